package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DialFunc opens a connection; net.Dialer.DialContext and faultnet's Dialer
// have this shape.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func defaultDial(d DialFunc) DialFunc {
	if d != nil {
		return d
	}
	var nd net.Dialer
	return nd.DialContext
}

// pool is a client's connection to "a name server": it keeps one connection
// to the name server in use and moves to the next configured one when a
// request fails, as RocketMQ's clients do.
type pool struct {
	addrs    []string
	dial     DialFunc
	timeout  time.Duration
	maxFrame int
	log      *slog.Logger
	wg       sync.WaitGroup // read loops

	mu     sync.Mutex // guards the fields below
	cur    int        // index into addrs of the name server in use
	peer   *peer      // connection to addrs[cur]; nil when none
	closed bool
}

func newPool(addrs []string, dial DialFunc, timeout time.Duration, maxFrame int, log *slog.Logger) *pool {
	return &pool{addrs: addrs, dial: defaultDial(dial), timeout: timeout, maxFrame: maxFrame, log: log}
}

// do runs f against the name server in use and, while it fails for reasons
// other than an answer, against the next ones, each at most once. Each
// attempt gets timeout (0: the request timeout).
func (p *pool) do(ctx context.Context, timeout time.Duration, f func(ctx context.Context, pr *peer) error) error {
	if timeout <= 0 {
		timeout = p.timeout
	}
	var last error
	for range p.addrs {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr, addr, err := p.get(ctx)
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, timeout)
			err = f(actx, pr)
			cancel()
			if err == nil {
				return nil
			}
			var re *remoteError
			if errors.As(err, &re) && !errors.Is(err, ErrClosed) {
				return err // an answer, not an outage
			}
			p.drop(pr)
		}
		if errors.Is(err, ErrClosed) && p.isClosed() {
			return err
		}
		p.log.Debug("name server request failed, trying the next", "name-server", addr, "error", err)
		last = err
	}
	return fmt.Errorf("%w: %w", ErrNoNameServer, last)
}

// get returns the connection to the name server in use, dialling it when
// needed; a failed dial moves on to the next name server.
func (p *pool) get(ctx context.Context) (*peer, string, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, "", ErrClosed
	}
	if p.peer != nil && !p.peer.isClosed() {
		pr, addr := p.peer, p.addrs[p.cur]
		p.mu.Unlock()
		return pr, addr, nil
	}
	p.peer = nil
	addr := p.addrs[p.cur]
	p.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	conn, err := p.dial(dctx, "tcp", addr)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.addrs[p.cur] == addr {
			p.cur = (p.cur + 1) % len(p.addrs)
		}
		return nil, addr, fmt.Errorf("nameserver: dial %s: %w", addr, err)
	}
	pr := newPeer(conn, peerConfig{maxFrame: p.maxFrame, timeout: p.timeout, log: p.log})
	if p.closed || p.peer != nil {
		// closed meanwhile, or another caller connected first
		pr.close()
		if p.closed {
			return nil, addr, ErrClosed
		}
		return p.peer, p.addrs[p.cur], nil
	}
	p.peer = pr
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = pr.readLoop()
	}()
	return pr, addr, nil
}

// drop closes a failed connection and moves to the next name server.
func (p *pool) drop(pr *peer) {
	pr.close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peer == pr {
		p.peer = nil
		p.cur = (p.cur + 1) % len(p.addrs)
	}
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close closes the connection and waits for its read loop.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	pr := p.peer
	p.peer = nil
	p.mu.Unlock()
	if pr != nil {
		pr.close()
	}
	p.wg.Wait()
}
