package kclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go/protocol"
)

// Errors of this package, wrapped with %w.
var (
	// ErrNotSent: the request was never completely written, so the broker
	// cannot have acted on it (dial failure, version mismatch, broken
	// connection before the write).
	ErrNotSent = errors.New("kclient: request not sent")
	// ErrUnsupported: the broker does not speak a version of the API this
	// client needs.
	ErrUnsupported = errors.New("kclient: broker does not support a needed API version")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("kclient: closed")
	// ErrBadResponse: the broker's response lacks the requested topic or
	// partition.
	ErrBadResponse = errors.New("kclient: malformed response")
)

// DialFunc opens a connection; net.Dialer.DialContext and faultnet's Dialer
// have this shape.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Client.
type Config struct {
	// ClientID is sent with every request (Kafka client.id).
	ClientID string
	// Dial opens connections; nil uses net.Dialer.
	Dial DialFunc
	// DialTimeout bounds connecting and the ApiVersions handshake (Kafka
	// socket.connection.setup.timeout.ms: 10 s).
	DialTimeout time.Duration
	// Logger receives connection events at debug level; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns Kafka's client defaults.
func DefaultConfig() Config {
	return Config{ClientID: "brokerlab", DialTimeout: 10 * time.Second}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.DialTimeout <= 0 {
		return errors.New("kclient: dial timeout must be positive")
	}
	return nil
}

// Client sends requests to named broker addresses over one pipelined
// connection per address. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu      sync.Mutex // guards entries and closed
	entries map[string]*entry
	closed  bool
}

// entry holds the connection to one address; sem (capacity 1) serialises
// dialing so that concurrent callers share one connection.
type entry struct {
	sem chan struct{}
	c   *conn // guarded by sem
}

// New returns a client. Zero DialTimeout and nil Dial take the defaults.
func New(cfg Config) *Client {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultConfig().DialTimeout
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, entries: make(map[string]*entry)}
}

// Close closes every connection. Requests in progress fail. Idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	entries := c.entries
	c.entries = map[string]*entry{}
	c.mu.Unlock()
	for _, e := range entries {
		e.sem <- struct{}{}
		if e.c != nil {
			e.c.close()
			e.c = nil
		}
		<-e.sem
	}
	return nil
}

// Disconnect closes the connection to addr, if any; the next request dials
// again. Requests pending on it fail.
func (c *Client) Disconnect(addr string) {
	c.mu.Lock()
	e := c.entries[addr]
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.sem <- struct{}{}
	if e.c != nil {
		e.c.close()
		e.c = nil
	}
	<-e.sem
}

// conn returns a healthy connection to addr, dialing when needed.
func (c *Client) conn(ctx context.Context, addr string) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	e := c.entries[addr]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		c.entries[addr] = e
	}
	c.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("kclient: connect to %s: %w: %w", addr, ErrNotSent, ctx.Err())
	}
	defer func() { <-e.sem }()
	if e.c != nil && !e.c.broken() {
		return e.c, nil
	}
	if e.c != nil {
		e.c.close()
		e.c = nil
	}
	cn, err := dialConn(ctx, c.cfg, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		cn.close()
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	e.c = cn
	return cn, nil
}

// roundTrip sends msg to addr.
func (c *Client) roundTrip(ctx context.Context, addr string, msg protocol.Message, hasResponse bool) (protocol.Message, error) {
	m, _, err := c.roundTripV(ctx, addr, msg, hasResponse)
	return m, err
}

// roundTripV is roundTrip that also returns the version used.
func (c *Client) roundTripV(ctx context.Context, addr string, msg protocol.Message, hasResponse bool) (protocol.Message, int16, error) {
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return nil, 0, err
	}
	m, err := cn.roundTrip(ctx, msg, hasResponse)
	return m, cn.versions[msg.ApiKey()], err
}
