package jetstream

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// routeDialTimeout bounds a proxy's dial to the server behind it (nats-server
// gives a route dial 1 s; a cut link hangs a dial until this passes).
const routeDialTimeout = 2 * time.Second

// routeProxy carries the route connections one server opens to another
// through faultnet. nats-server dials routes itself, with no way to pass a
// dialer, so server `from` is given the proxy's address as its route to
// server `to`; the proxy dials `to` with faultnet's dialer for `from`, and
// every fault on the link between the two (cut, delay, pause, isolate) acts
// on the route as it would on a real network.
type routeProxy struct {
	ln     net.Listener
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	target func() string // current cluster address of `to`; "" while it is down

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newRouteProxy listens on a loopback port and serves until close.
func newRouteProxy(dial func(ctx context.Context, network, addr string) (net.Conn, error), target func() string) (*routeProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &routeProxy{ln: ln, dial: dial, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *routeProxy) addr() string { return p.ln.Addr().String() }

func (p *routeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept error (e.g. EMFILE); the listener is still good
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c for close; false once the proxy is closed.
func (p *routeProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *routeProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// serve pipes one route connection to the target server. A target that is
// down closes the connection at once, as a refused dial would; the server
// retries its route on its own schedule.
func (p *routeProxy) serve(in net.Conn) {
	defer p.wg.Done()
	defer p.untrack(in)
	defer in.Close()
	addr := p.target()
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeDialTimeout)
	out, err := p.dial(ctx, "tcp", addr)
	cancel()
	if err != nil {
		return
	}
	if !p.track(out) {
		out.Close()
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Routes never half-close: the end of either direction ends both.
		in.Close()
		out.Close()
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// close stops accepting, closes every open connection and waits for the
// proxy's goroutines. It is idempotent.
func (p *routeProxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
