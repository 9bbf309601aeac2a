package faultnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by dialers of a closed Network.
var ErrClosed = errors.New("faultnet: network closed")

// Defaults of the options.
const (
	DefaultDialTimeout = 20 * time.Second
	DefaultBufferBytes = 4 << 20
	DefaultLinger      = 5 * time.Second
)

// Option configures a Network.
type Option func(*options)

type options struct {
	dialTimeout time.Duration
	bufferBytes int
	linger      time.Duration
}

// DialTimeout bounds how long a dial over a cut link hangs when its context
// has no earlier deadline (a real connect gives up after its SYN retries).
// Default DefaultDialTimeout.
func DialTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.dialTimeout = d
		}
	}
}

// BufferBytes is how many bytes each direction of a connection holds while
// its link is stalled or delayed, like a socket buffer: once full, writes
// block and the far end is no longer read. Default DefaultBufferBytes.
func BufferBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.bufferBytes = n
		}
	}
}

// Linger bounds how long a closed connection keeps delivering data written
// before Close (still delayed or stalled) before it is dropped.
// Default DefaultLinger.
func Linger(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.linger = d
		}
	}
}

// Network joins named in-process nodes over real loopback TCP and injects
// faults on the links between them. Only connections opened through its
// dialers are affected. The zero value is not usable: call New.
type Network struct {
	log  *slog.Logger
	opts options
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu       sync.Mutex // guards everything below
	closed   bool
	names    map[string]string // normalized address -> node name
	cuts     map[link]bool     // unordered
	delays   map[link]time.Duration
	losses   map[link]float64 // packet loss, 0 to 1
	isolated map[string]bool
	peerCut  map[string]bool // isolated from the registered nodes only
	nodes    map[string]bool // every name Register was given
	paused   map[string]bool
	conns    map[*conn]struct{}
	counters map[[2]string]*atomic.Int64 // bytes delivered from [0] to [1]
	changed  chan struct{}               // closed and replaced on every change
}

// link is an unordered pair of node names.
type link struct{ a, b string }

func linkOf(a, b string) link {
	if b < a {
		a, b = b, a
	}
	return link{a, b}
}

// New returns an empty Network. logger may be nil.
func New(logger *slog.Logger, opts ...Option) *Network {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{dialTimeout: DefaultDialTimeout, bufferBytes: DefaultBufferBytes, linger: DefaultLinger}
	for _, opt := range opts {
		opt(&o)
	}
	return &Network{
		log:      logger,
		opts:     o,
		done:     make(chan struct{}),
		names:    make(map[string]string),
		cuts:     make(map[link]bool),
		delays:   make(map[link]time.Duration),
		losses:   make(map[link]float64),
		isolated: make(map[string]bool),
		peerCut:  make(map[string]bool),
		nodes:    make(map[string]bool),
		paused:   make(map[string]bool),
		conns:    make(map[*conn]struct{}),
		counters: make(map[[2]string]*atomic.Int64),
		changed:  make(chan struct{}),
	}
}

// Register names the node listening on addr. A node may have several
// addresses; registering a new address for a restarted node is the same call.
// Connections already open to addr take the name at once.
func (n *Network) Register(name, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[normalize(addr)] = name
	n.nodes[name] = true
	n.log.Debug("faultnet: register", "node", name, "addr", addr)
	n.changedLocked()
}

// Name returns the node name of addr, or addr itself when it has none.
func (n *Network) Name(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nameLocked(normalize(addr))
}

// nameLocked names a normalized address. Lock should be held.
func (n *Network) nameLocked(addr string) string {
	if name, ok := n.names[addr]; ok {
		return name
	}
	return addr
}

// Cut black-holes the link between a and b in both directions: open
// connections stall without losing data and new dials hang.
func (n *Network) Cut(a, b string) {
	n.change("cut", a, b, func() { n.cuts[linkOf(a, b)] = true })
}

// Heal undoes Cut(a, b). Data held during the cut is delivered in order.
func (n *Network) Heal(a, b string) {
	n.change("heal", a, b, func() { delete(n.cuts, linkOf(a, b)) })
}

// Isolate cuts a from every other node, including nodes registered later and
// addresses without a name.
func (n *Network) Isolate(a string) {
	n.change("isolate", a, "", func() { n.isolated[a] = true })
}

// IsolatePeers cuts a from every node registered with Register (the
// cluster's listening nodes, including those registered later) and from
// none of the dialers without an address (clients): a node split from its
// peers while its clients still reach it.
func (n *Network) IsolatePeers(a string) {
	n.change("isolate-peers", a, "", func() { n.peerCut[a] = true })
}

// Rejoin undoes Isolate(a) and IsolatePeers(a); explicit cuts stay.
func (n *Network) Rejoin(a string) {
	n.change("rejoin", a, "", func() {
		delete(n.isolated, a)
		delete(n.peerCut, a)
	})
}

// Pause stalls every link to or from a, as if its process were stopped.
func (n *Network) Pause(a string) {
	n.change("pause", a, "", func() { n.paused[a] = true })
}

// Resume undoes Pause(a).
func (n *Network) Resume(a string) {
	n.change("resume", a, "", func() { delete(n.paused, a) })
}

// Delay adds one-way latency d to both directions of the link between a and
// b; d <= 0 removes it. A change applies to data already in flight, so
// removing a delay releases what it held. Data is never reordered, and
// throughput is bounded only by BufferBytes per delay.
func (n *Network) Delay(a, b string, d time.Duration) {
	n.change("delay", a, b, func() {
		if d <= 0 {
			delete(n.delays, linkOf(a, b))
			return
		}
		n.delays[linkOf(a, b)] = d
	}, "delay", d)
}

// Loss makes the link between a and b lose a fraction p (0 to 1) of its
// packets in both directions; p <= 0 removes it. Over TCP a lost packet is
// not lost data but a retransmission: a chunk of data whose packets (1448
// bytes each) include a lost one is held for a retransmission timeout
// (200 ms, Linux's minimum RTO), doubling for each retransmission that is
// lost too, and everything after it on the connection waits behind it, as
// TCP's in-order delivery makes it. Data is never dropped or reordered.
func (n *Network) Loss(a, b string, p float64) {
	n.change("loss", a, b, func() {
		if p <= 0 {
			delete(n.losses, linkOf(a, b))
			return
		}
		n.losses[linkOf(a, b)] = min(p, 1)
	}, "loss", p)
}

// HealAll removes every cut, isolation (of both kinds), pause, delay and
// loss.
func (n *Network) HealAll() {
	n.change("heal-all", "", "", func() {
		clear(n.cuts)
		clear(n.isolated)
		clear(n.peerCut)
		clear(n.paused)
		clear(n.delays)
		clear(n.losses)
	})
}

// Reset closes every open connection between a and b (either way) like a TCP
// reset: pending data is dropped, the dialing side gets ECONNRESET and the
// listening side an RST. New dials are not affected.
func (n *Network) Reset(a, b string) {
	var victims []*conn
	n.mu.Lock()
	for c := range n.conns {
		if linkOf(c.from, n.nameLocked(c.addr)) == linkOf(a, b) {
			victims = append(victims, c)
		}
	}
	n.mu.Unlock()
	n.log.Info("faultnet: reset", "node-a", a, "node-b", b, "conns", len(victims))
	for _, c := range victims {
		c.kill(true)
	}
}

// Bytes returns how many bytes connections have delivered from node from to
// node to so far.
func (n *Network) Bytes(from, to string) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ctr, ok := n.counters[[2]string{from, to}]; ok {
		return ctr.Load()
	}
	return 0
}

// LinkBytes is the traffic carried from one node to another.
type LinkBytes struct {
	From, To string
	Bytes    int64
}

// Traffic returns the bytes carried so far on every directed link that has
// had a connection, ordered by From then To.
func (n *Network) Traffic() []LinkBytes {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]LinkBytes, 0, len(n.counters))
	for k, ctr := range n.counters {
		out = append(out, LinkBytes{From: k[0], To: k[1], Bytes: ctr.Load()})
	}
	slices.SortFunc(out, func(a, b LinkBytes) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return out
}

// Close closes every connection, waits for their goroutines and makes the
// dialers fail with ErrClosed. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.done)
	conns := make([]*conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.changedLocked()
	n.mu.Unlock()
	for _, c := range conns {
		c.kill(false)
	}
	n.wg.Wait()
	return nil
}

func (n *Network) change(what, a, b string, f func(), attrs ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f()
	n.log.Info("faultnet: "+what, append([]any{"node-a", a, "node-b", b}, attrs...)...)
	n.changedLocked()
}

// changedLocked pushes the current link states to every connection and wakes
// hanging dials. Lock should be held.
func (n *Network) changedLocked() {
	for c := range n.conns {
		c.setLink(n.linkStateLocked(c.from, c.addr))
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// linkState is what a connection needs to know about its link.
type linkState struct {
	stalled bool
	delay   time.Duration
	loss    float64
	out, in *atomic.Int64 // byte counters: dialer to listener, and back
}

// linkStateLocked computes the state of the link from a node to an address.
// Lock should be held.
func (n *Network) linkStateLocked(from, addr string) linkState {
	to := n.nameLocked(addr)
	return linkState{
		stalled: n.cutLocked(from, to) || n.paused[from] || n.paused[to],
		delay:   n.delays[linkOf(from, to)],
		loss:    n.losses[linkOf(from, to)],
		out:     n.counterLocked(from, to),
		in:      n.counterLocked(to, from),
	}
}

// cutLocked reports whether packets between a and b are dropped. A node is
// never cut from itself. Lock should be held.
func (n *Network) cutLocked(a, b string) bool {
	if a == b {
		return false
	}
	return n.cuts[linkOf(a, b)] || n.isolated[a] || n.isolated[b] ||
		(n.peerCut[a] && n.nodes[b]) || (n.peerCut[b] && n.nodes[a])
}

// counterLocked returns the byte counter for one direction. Lock should be
// held.
func (n *Network) counterLocked(from, to string) *atomic.Int64 {
	k := [2]string{from, to}
	ctr, ok := n.counters[k]
	if !ok {
		ctr = new(atomic.Int64)
		n.counters[k] = ctr
	}
	return ctr
}

// Dialer returns a dial function for node from, with the signature of
// net.Dialer.DialContext, broker.Config.Dial and kafka-go's Transport.Dial
// and Dialer.DialFunc. network may be "tcp", "tcp4", "tcp6" or "unix"; addr
// may carry a scheme ("tcp://", "unix://", "http://").
func (n *Network) Dialer(from string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		network, addr = parseTarget(network, addr)
		return n.dial(ctx, from, network, addr)
	}
}

// GRPCDialer returns a dial function for node from for
// grpc.WithContextDialer (the etcd client's DialOptions). grpc passes
// "host:port", "unix:path" or "unix:///path".
func (n *Network) GRPCDialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		network, addr := parseTarget("", addr)
		return n.dial(ctx, from, network, addr)
	}
}

// parseTarget splits a dial target into a Go network and address.
func parseTarget(network, addr string) (string, string) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return "unix", strings.TrimPrefix(addr, "unix://")
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:")
	}
	for _, scheme := range []string{"tcp://", "http://", "https://", "passthrough:///"} {
		addr = strings.TrimPrefix(addr, scheme)
	}
	if network == "" {
		network = "tcp"
	}
	return network, addr
}

// normalize makes the addresses dialers see match registered ones.
func normalize(addr string) string {
	_, addr = parseTarget("", addr)
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func (n *Network) dial(ctx context.Context, from, network, addr string) (net.Conn, error) {
	key := normalize(addr)
	delay, err := n.awaitLink(ctx, from, network, key)
	if err != nil {
		return nil, err
	}
	if delay > 0 { // the handshake takes a round trip
		t := time.NewTimer(2 * delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		raw.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ErrClosed}
	}
	c := newConn(n, from, key, raw, n.linkStateLocked(from, key))
	n.conns[c] = struct{}{}
	n.log.Debug("faultnet: connected", "from", from, "to", n.nameLocked(key), "addr", addr)
	return c, nil
}

// awaitLink waits while the link from node from to addr is cut, like a
// connect whose SYNs are dropped, and returns the link's delay.
func (n *Network) awaitLink(ctx context.Context, from, network, addr string) (time.Duration, error) {
	timer := time.NewTimer(n.opts.dialTimeout)
	defer timer.Stop()
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return 0, &net.OpError{Op: "dial", Net: network, Err: ErrClosed}
		}
		to := n.nameLocked(addr)
		cut := n.cutLocked(from, to)
		delay := n.delays[linkOf(from, to)]
		changed := n.changed
		n.mu.Unlock()
		if !cut {
			return delay, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		case <-timer.C:
			return 0, &net.OpError{Op: "dial", Net: network, Err: &timeoutError{
				msg: fmt.Sprintf("faultnet: dial %s -> %s timed out after %v: link cut", from, to, n.opts.dialTimeout)}}
		}
	}
}

// remove forgets a connection once it is closed.
func (n *Network) remove(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// timeoutError is a net.Error whose Timeout is true; errors.Is matches
// os.ErrDeadlineExceeded.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }
