package faultnet

import (
	"context"
	"net"
	"testing"
)

// BenchmarkThroughput compares a plain loopback connection with one through
// a Network (no faults), writing 64 KiB chunks to a sink.
func BenchmarkThroughput(b *testing.B) {
	for _, tc := range []struct {
		name string
		dial func(n *Network, addr string) (net.Conn, error)
	}{
		{"direct", func(_ *Network, addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
		{"faultnet", func(n *Network, addr string) (net.Conn, error) {
			return n.Dialer("a")(context.Background(), "tcp", addr)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := startServer(b, false)
			n := New(nil)
			defer n.Close()
			c, err := tc.dial(n, srv.addr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTrip measures a small request/response through an echo.
func BenchmarkRoundTrip(b *testing.B) {
	for _, through := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "faultnet"}[through]
		b.Run(name, func(b *testing.B) {
			srv := startServer(b, true)
			n := New(nil)
			defer n.Close()
			var c net.Conn
			var err error
			if through {
				c, err = n.Dialer("a")(context.Background(), "tcp", srv.addr())
			} else {
				c, err = net.Dial("tcp", srv.addr())
			}
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 100)
			got := make([]byte, 100)
			for b.Loop() {
				c.Write(msg)
				if _, err := readFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := c.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
