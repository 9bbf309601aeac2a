package faultnet_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/brokerlab/brokerlab/faultnet"
)

func Example() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c) // echo
			c.Close()
		}
	}()

	nw := faultnet.New(nil)
	defer nw.Close()
	nw.Register("server", ln.Addr().String())
	c, _ := nw.Dialer("client")(context.Background(), "tcp", ln.Addr().String())
	defer c.Close()

	nw.Cut("client", "server")
	c.Write([]byte("hello")) // buffered, not delivered
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 5))
	fmt.Println("during the cut:", err.(net.Error).Timeout())

	nw.Heal("client", "server")
	c.SetReadDeadline(time.Time{})
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println("after heal:", string(buf))
	// Output:
	// during the cut: true
	// after heal: hello
}
