package nameserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// minBackoff is the first pause before reconnecting to a name server; it
// doubles up to the heartbeat interval.
const minBackoff = 50 * time.Millisecond

// session is a broker's persistent registration connection to one name
// server: it registers on connect, every heartbeat and when kicked, serves
// the name server's pushes, and reconnects when the connection fails.
type session struct {
	r    *Registrar
	addr string
	kick chan struct{} // register now

	// sendMu is held while deciding to register and sending it, so that
	// Deregister's unregister cannot be overtaken by a heartbeat.
	sendMu  sync.Mutex
	stopped bool // after unregister; guarded by sendMu

	mu   sync.Mutex // guards peer and up
	peer *peer
	up   bool

	served atomic.Bool // a registration succeeded since the last connect

	// lastID is the broker id last registered over the current
	// connection, -1 before; guarded by sendMu. In controller mode the id
	// changes with the role, and the old one is unregistered first.
	lastID int32

	registrations, bytesOut, bytesIn, failures atomic.Int64
}

func (s *session) run(ctx context.Context) {
	backoff := min(minBackoff, s.r.cfg.HeartbeatInterval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for ctx.Err() == nil {
		err := s.connectAndServe(ctx)
		if ctx.Err() != nil {
			return
		}
		s.setUp(false, err)
		if errors.Is(err, errStopped) {
			return
		}
		if s.served.Swap(false) { // the connection worked: retry soon
			backoff = min(minBackoff, s.r.cfg.HeartbeatInterval)
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, s.r.cfg.HeartbeatInterval)
	}
}

// maxMissed is how many registrations in a row may time out before the
// connection is given up and dialled again.
const maxMissed = 3

// errStopped ends a session after Deregister.
var errStopped = errors.New("nameserver: registration stopped")

// connectAndServe dials the name server and registers over the connection
// until it fails.
func (s *session) connectAndServe(ctx context.Context) error {
	cfg := s.r.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	conn, err := defaultDial(cfg.Dial)(dctx, "tcp", s.addr)
	cancel()
	if err != nil {
		s.failures.Add(1)
		return fmt.Errorf("nameserver: dial %s: %w", s.addr, err)
	}
	p := newPeer(conn, peerConfig{maxFrame: cfg.MaxFrameBytes, timeout: cfg.RequestTimeout, log: s.r.log, onRequest: s.r.onPush})
	s.mu.Lock()
	s.peer = p
	s.mu.Unlock()
	s.sendMu.Lock()
	s.lastID = -1
	s.sendMu.Unlock()
	s.r.goFunc(func() { _ = p.readLoop() })
	defer s.closePeer()
	if ctx.Err() != nil { // Close ran before s.peer was set
		return ctx.Err()
	}

	t := time.NewTicker(cfg.HeartbeatInterval)
	defer t.Stop()
	missed := 0
	for {
		switch err := s.register(ctx, p); {
		case err == nil:
			missed = 0
		case errors.Is(err, context.DeadlineExceeded) && !p.isClosed() && missed+1 < maxMissed:
			// A silent name server (paused, or a black-holed link) keeps
			// the connection, as RocketMQ's clients do; the next
			// heartbeat tries it again.
			missed++
			s.setUp(false, err)
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return p.closedErr()
		case <-t.C:
		case <-s.kick:
		}
	}
}

// register sends one registration and waits for the answer. sendMu is
// held throughout, so an unregister is never overtaken by it.
func (s *session) register(ctx context.Context, p *peer) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.stopped {
		return errStopped
	}
	req := s.r.registerRequest()
	cctx, cancel := context.WithTimeout(ctx, s.r.cfg.RequestTimeout)
	defer cancel()
	if s.lastID >= 0 && s.lastID != req.BrokerID {
		un := unregisterRequest{Cluster: req.Cluster, Group: req.Group, BrokerID: s.lastID}
		if _, err := p.call(cctx, typeUnregister, un, nil); err != nil {
			return fmt.Errorf("nameserver: unregister broker id %d from %s: %w", s.lastID, s.addr, err)
		}
		s.lastID = -1
	}
	st, err := p.call(cctx, typeRegister, req, nil)
	s.bytesOut.Add(int64(st.sent))
	s.bytesIn.Add(int64(st.received))
	if err != nil {
		s.failures.Add(1)
		return fmt.Errorf("nameserver: register with %s: %w", s.addr, err)
	}
	s.registrations.Add(1)
	s.lastID = req.BrokerID
	s.served.Store(true)
	s.setUp(true, nil)
	s.r.markRegistered()
	return nil
}

// unregister sends an unregister over the live connection, if any, after
// any registration in flight; later heartbeats are not sent.
func (s *session) unregister(ctx context.Context) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.stopped = true
	s.mu.Lock()
	p := s.peer
	s.mu.Unlock()
	if p == nil || p.isClosed() {
		return nil // not registered there; nothing to undo
	}
	cctx, cancel := context.WithTimeout(ctx, s.r.cfg.RequestTimeout)
	defer cancel()
	id := s.lastID
	if id < 0 {
		return nil // nothing registered over this connection
	}
	req := unregisterRequest{Cluster: s.r.cfg.Cluster, Group: s.r.cfg.Group, BrokerID: id}
	if _, err := p.call(cctx, typeUnregister, req, nil); err != nil {
		return fmt.Errorf("nameserver: unregister from %s: %w", s.addr, err)
	}
	return nil
}

func (s *session) closePeer() {
	s.mu.Lock()
	p := s.peer
	s.peer = nil
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// setUp records whether the name server accepts registrations, logging
// changes only.
func (s *session) setUp(up bool, err error) {
	s.mu.Lock()
	was := s.up
	s.up = up
	s.mu.Unlock()
	switch {
	case up && !was:
		s.r.log.Info("registered with name server", "name-server", s.addr)
	case !up && was:
		s.r.log.Warn("lost name server", "name-server", s.addr, "error", err)
	case !up:
		s.r.log.Debug("name server unreachable", "name-server", s.addr, "error", err)
	}
}

func (s *session) stats() RegistrarStats {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	return RegistrarStats{
		NameServer:       s.addr,
		Connected:        up,
		Registrations:    s.registrations.Load(),
		RegisterBytesOut: s.bytesOut.Load(),
		RegisterBytesIn:  s.bytesIn.Load(),
		Failures:         s.failures.Load(),
	}
}
