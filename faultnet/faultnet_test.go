package faultnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// server is a real loopback listener that echoes or sinks what it reads.
type server struct {
	ln       net.Listener
	received atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startServer(t testing.TB, echo bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c, echo) })
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *server) serve(c net.Conn, echo bool) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		s.received.Add(int64(n))
		if echo && n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *server) addr() string { return s.ln.Addr().String() }

// closeConns closes every accepted connection (the listener stays).
func (s *server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *server) close() {
	s.ln.Close()
	s.closeConns()
	s.wg.Wait()
}

func newNet(t *testing.T, opts ...Option) *Network {
	t.Helper()
	n := New(testutil.Logger(t, slog.LevelDebug), opts...)
	t.Cleanup(func() { n.Close() })
	return n
}

func dial(t *testing.T, n *Network, from, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.Dialer(from)(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s -> %s: %v", from, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo back, returning how long it took.
func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	return time.Since(start)
}

func expectTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a net.Error timeout wrapping os.ErrDeadlineExceeded", err)
	}
}

func TestCutStallsAndHealDeliversInOrder(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	roundTrip(t, c, []byte("before"))
	before := srv.received.Load()

	n.Cut("a", "b")
	var want bytes.Buffer
	for i := range 100 {
		msg := fmt.Appendf(nil, "message-%03d;", i)
		want.Write(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("write during cut: %v", err)
		}
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	expectTimeout(t, err)
	if got := srv.received.Load(); got != before {
		t.Fatalf("server received %d bytes during the cut", got-before)
	}

	n.Heal("a", "b")
	got := make([]byte, want.Len())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read after heal: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("after heal got %q, want %q", got, want.Bytes())
	}
}

func TestCutHoldsReplyAndEOF(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// The server has echoed once it has read; then cut and let it hang up.
	testutil.Eventually(t, 5*time.Second, func() error {
		if srv.received.Load() < 4 {
			return errors.New("server has not read the ping")
		}
		return nil
	})
	n.Cut("a", "b")
	srv.closeConns()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	expectTimeout(t, err)

	n.Heal("a", "b")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ping" {
		t.Fatalf("after heal read %q, %v; want the echo then EOF", got, err)
	}
}

func TestDialDuringCutHangsUntilHealOrContext(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	n.Cut("a", "b")

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := n.Dialer("a")(ctx, "tcp", srv.addr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial over a cut link: %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("dial failed after %v, before its context ended", el)
	}

	// b -> a is the same link; a third node is not affected.
	dial(t, n, "c", srv.addr())

	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := n.Dialer("a")(ctx, "tcp", srv.addr())
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("dial returned during the cut: %v", r.err)
	case <-time.After(50 * time.Millisecond):
	}
	n.Heal("a", "b")
	r := <-done
	if r.err != nil {
		t.Fatalf("dial after heal: %v", r.err)
	}
	defer r.c.Close()
	roundTrip(t, r.c, []byte("hello"))
}

func TestDialTimeoutOnCutLink(t *testing.T) {
	n := newNet(t, DialTimeout(50*time.Millisecond))
	srv := startServer(t, false)
	n.Register("b", srv.addr())
	n.Cut("b", "a")
	_, err := n.Dialer("a")(context.Background(), "tcp", srv.addr())
	expectTimeout(t, err)
}

func TestDelayAddsLatencyWithoutSerialising(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	base := roundTrip(t, c, []byte("x"))

	const d = 50 * time.Millisecond
	n.Delay("a", "b", d)
	rtt := roundTrip(t, c, []byte("y"))
	if rtt < 2*d || rtt > 2*d+base+3*time.Second {
		t.Fatalf("round trip with %v one-way delay took %v (base %v)", d, rtt, base)
	}

	// 50 writes in a row arrive about one round trip later, not 50.
	start := time.Now()
	pipeline(t, c, "m", 50)
	if el := time.Since(start); el < 2*d || el > 2*d+2500*time.Millisecond { // serialised: 50 × 2d = 5s
		t.Fatalf("50 pipelined writes took %v, want about %v", el, 2*d)
	}

	// New connections pay the delay on the handshake too.
	start = time.Now()
	dial(t, n, "a", srv.addr())
	if el := time.Since(start); el < 2*d {
		t.Fatalf("dial over a delayed link took %v, want at least %v", el, 2*d)
	}

	// Removing a huge delay lets traffic through (roundTrip gives up after 10s).
	n.Delay("a", "b", time.Hour)
	n.Delay("a", "b", 0)
	roundTrip(t, c, []byte("z"))
}

func TestDelayChangeAppliesToDataInFlight(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Delay("a", "b", time.Hour)
	c.Write([]byte("first"))
	c.Write([]byte("second"))
	n.HealAll()
	got := make([]byte, len("firstsecond"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "firstsecond" {
		t.Fatalf("after removing the delay read %q, %v", got, err)
	}
}

func TestWriteDeadlineWhenBufferFull(t *testing.T) {
	n := newNet(t, BufferBytes(1024))
	srv := startServer(t, false)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Cut("a", "b")
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	written, err := c.Write(make([]byte, 4096))
	expectTimeout(t, err)
	if written != 1024 {
		t.Fatalf("wrote %d bytes into a stalled 1 KiB buffer, want 1024", written)
	}
	// A deadline in the past fails at once; clearing it lets data flow again.
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write with a past deadline succeeded")
	}
	c.SetWriteDeadline(time.Time{})
	n.Heal("a", "b")
	if _, err := c.Write(make([]byte, 3072)); err != nil {
		t.Fatalf("write after heal: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := srv.received.Load(); got != 4096 {
			return fmt.Errorf("server received %d bytes, want 4096", got)
		}
		return nil
	})
}

func TestReadDeadlineExtendedWhileBlocked(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Cut("a", "b")
	c.Write([]byte("late"))
	errc := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c, make([]byte, 4))
		errc <- err
	}()
	// A deadline set while Read blocks wakes it.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	expectTimeout(t, <-errc)
}

func TestPauseStallsEveryLinkOfANode(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	ca := dial(t, n, "a", srv.addr())
	cc := dial(t, n, "c", srv.addr())

	n.Pause("b")
	for _, c := range []net.Conn{ca, cc} {
		c.Write([]byte("hi"))
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 2))
		expectTimeout(t, err)
	}
	// A dial to a stopped process completes (the kernel accepts) but stalls.
	cd := dial(t, n, "d", srv.addr())
	cd.Write([]byte("hi"))

	n.Resume("b")
	for _, c := range []net.Conn{ca, cc, cd} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
			t.Fatalf("after resume read %q, %v", got, err)
		}
	}
}

func TestIsolateCoversLaterAndUnnamedNodes(t *testing.T) {
	n := newNet(t)
	srvB := startServer(t, true)
	srvC := startServer(t, true)
	srvU := startServer(t, true) // never registered
	n.Register("b", srvB.addr())
	n.Isolate("a")
	n.Register("c", srvC.addr())

	for _, addr := range []string{srvB.addr(), srvC.addr(), srvU.addr()} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := n.Dialer("a")(ctx, "tcp", addr)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial from isolated a to %s (%s): %v, want a hang", n.Name(addr), addr, err)
		}
	}
	roundTrip(t, dial(t, n, "x", srvC.addr()), []byte("others still talk"))

	n.Rejoin("a")
	roundTrip(t, dial(t, n, "a", srvC.addr()), []byte("back"))
}

func TestNameAppliesToConnectionsOpenedBeforeRegister(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	c := dial(t, n, "a", "localhost:"+portOf(t, srv.addr()))
	n.Register("b", srv.addr()) // after the dial, and spelled differently
	n.Cut("a", "b")
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	expectTimeout(t, err)
	n.HealAll()
	c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	// A restarted node registers its new address under the same name.
	srv2 := startServer(t, true)
	n.Register("b", srv2.addr())
	n.Cut("a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := n.Dialer("a")(ctx, "tcp", srv2.addr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to the re-registered address over a cut: %v", err)
	}
}

func portOf(t *testing.T, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestResetClosesExistingConnections(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	other := dial(t, n, "c", srv.addr())
	roundTrip(t, c, []byte("x"))

	n.Reset("b", "a")
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write after reset: %v, want ECONNRESET", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
	roundTrip(t, other, []byte("unaffected"))
	roundTrip(t, dial(t, n, "a", srv.addr()), []byte("new dials work"))
}

func TestCloseReleasesBlockedCalls(t *testing.T) {
	n := newNet(t, BufferBytes(16))
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Cut("a", "b")
	errs := make(chan error, 2)
	go func() { _, err := c.Read(make([]byte, 1)); errs <- err }()
	go func() { _, err := c.Write(make([]byte, 64)); errs <- err }()
	select {
	case err := <-errs:
		t.Fatalf("a call returned during the cut: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	n.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked call after Network.Close: %v, want net.ErrClosed", err)
		}
	}
	if _, err := n.Dialer("a")(context.Background(), "tcp", srv.addr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after Close: %v, want ErrClosed", err)
	}
}

func TestCloseLingersUntilDelayedDataIsDelivered(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, false)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Delay("a", "b", 30*time.Millisecond)
	c.Write(make([]byte, 1000))
	c.Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := srv.received.Load(); got != 1000 {
			return fmt.Errorf("server received %d of 1000 bytes written before Close", got)
		}
		return nil
	})
}

func TestBytesCountsEachDirection(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	roundTrip(t, c, make([]byte, 1234))
	expectBytes(t, n, "a", "b", 1234)
	expectBytes(t, n, "b", "a", 1234)
	expectBytes(t, n, "a", "c", 0)
	want := []LinkBytes{{From: "a", To: "b", Bytes: 1234}, {From: "b", To: "a", Bytes: 1234}}
	if got := n.Traffic(); !slices.Equal(got, want) {
		t.Fatalf("Traffic() = %v, want %v", got, want)
	}
	if k, err := c.Read(nil); k != 0 || err != nil {
		t.Fatalf("empty read = %d, %v; want 0, nil", k, err)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9092", "unix:///tmp/s", "unix:x", "localhost:1", "http://[::1]:2379", "", ":"} {
		f.Add("tcp", s)
	}
	f.Fuzz(func(t *testing.T, network, addr string) {
		gotNet, gotAddr := parseTarget(network, addr)
		if gotNet == "" {
			t.Fatalf("parseTarget(%q, %q) gave no network", network, addr)
		}
		if len(gotAddr) > len(addr) {
			t.Fatalf("parseTarget(%q, %q) grew the address to %q", network, addr, gotAddr)
		}
		_ = normalize(addr)
	})
}

// expectBytes polls: the sender counts a chunk after its write returns, which
// may be after the echo came back.
func expectBytes(t *testing.T, n *Network, from, to string, want int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := n.Bytes(from, to); got != want {
			return fmt.Errorf("Bytes(%s, %s) = %d, want %d", from, to, got, want)
		}
		return nil
	})
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ network, addr, wantNet, wantAddr string }{
		{"tcp", "127.0.0.1:9092", "tcp", "127.0.0.1:9092"},
		{"", "127.0.0.1:2379", "tcp", "127.0.0.1:2379"},
		{"", "unix:///tmp/etcd.sock", "unix", "/tmp/etcd.sock"},
		{"", "unix:rel.sock", "unix", "rel.sock"},
		{"", "http://127.0.0.1:2379", "tcp", "127.0.0.1:2379"},
		{"tcp4", "tcp://127.0.0.1:1", "tcp4", "127.0.0.1:1"},
	} {
		gotNet, gotAddr := parseTarget(tc.network, tc.addr)
		if gotNet != tc.wantNet || gotAddr != tc.wantAddr {
			t.Errorf("parseTarget(%q, %q) = %q, %q; want %q, %q", tc.network, tc.addr, gotNet, gotAddr, tc.wantNet, tc.wantAddr)
		}
	}
}

func TestGRPCDialerOverUnixSocket(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	n := newNet(t)
	n.Register("etcd-0", "unix://"+path)
	c, err := n.GRPCDialer("broker-1")(context.Background(), "unix://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("grpc"))
	expectBytes(t, n, "broker-1", "etcd-0", 4)
}

func TestNoGoroutinesLeftAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		n := New(nil)
		srv := startServer(t, true)
		n.Register("b", srv.addr())
		var conns []net.Conn
		for i := range 5 {
			c, err := n.Dialer(fmt.Sprint("n", i))(context.Background(), "tcp", srv.addr())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			roundTrip(t, c, []byte("x"))
		}
		conns[0].Close() // closed by the caller
		n.Cut("n1", "b")
		conns[1].Write([]byte("held")) // closed by Network.Close mid-cut
		n.Delay("n2", "b", time.Hour)
		conns[2].Write([]byte("delayed"))
		n.Close()
		srv.close()
	}()
	testutil.Eventually(t, 5*time.Second, func() error {
		if now := runtime.NumGoroutine(); now > before {
			return fmt.Errorf("%d goroutines, %d before", now, before)
		}
		return nil
	})
}

// TestConcurrentTraffic moves data both ways on many connections while the
// links are cut, delayed and paused under it; run with -race.
func TestConcurrentTraffic(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	const conns, rounds = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		from := fmt.Sprint("n", i)
		c := dial(t, n, from, srv.addr())
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			for r := range rounds {
				msg := fmt.Appendf(nil, "%s-%03d", from, r)
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("%s round %d: %q, %v", from, r, got, err)
					return
				}
			}
		})
	}
	for i := range 20 {
		switch i % 4 {
		case 0:
			n.Cut("n0", "b")
		case 1:
			n.Delay("n1", "b", time.Millisecond)
		case 2:
			n.Pause("b")
		case 3:
			n.HealAll()
		}
	}
	n.HealAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// pipeline writes n messages prefix00, prefix01, ... to an echoing c
// without waiting and checks that they all come back, in order.
func pipeline(t *testing.T, c net.Conn, prefix string, n int) {
	t.Helper()
	var want bytes.Buffer
	for i := range n {
		msg := fmt.Appendf(nil, "%s%02d", prefix, i)
		want.Write(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, want.Len())
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %q, want %q", got, want.Bytes())
	}
}
