package kclient

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
)

// maxInFlight bounds the requests pipelined on one connection (Kafka's
// max.in.flight.requests.per.connection is 5; brokerlab's producer keeps one
// per partition, so a connection may carry one per partition it leads).
const maxInFlight = 256

// apiRange is a range of versions of one API.
type apiRange struct{ min, max int16 }

// wanted lists the versions this client speaks: the lowest version with the
// fields it needs (record batch v2 with headers needs Produce v3 and Fetch v4)
// up to the highest kafka-go's codec encodes.
var wanted = map[protocol.ApiKey]apiRange{
	protocol.Produce:      {3, 8},
	protocol.Fetch:        {4, 11},
	protocol.ListOffsets:  {1, 5},
	protocol.Metadata:     {1, 8},
	protocol.CreateTopics: {0, 5},
}

// call is one request waiting for its response.
type call struct {
	key     protocol.ApiKey
	version int16
	corr    int32
	res     chan result // buffered: the reader never blocks on it
}

type result struct {
	msg protocol.Message
	err error
}

// conn is one pipelined connection to a broker. Writes (and the order of
// pending) are serialised by wmu; responses are read by one goroutine, the
// reader, in the order requests were written.
type conn struct {
	addr     string
	clientID string
	nc       net.Conn
	br       *bufio.Reader
	versions map[protocol.ApiKey]int16
	log      *slog.Logger

	wmu     sync.Mutex // guards corr and writes; pending is filled under it
	corr    int32
	pending chan *call

	failOnce sync.Once
	failErr  error         // set before done is closed
	done     chan struct{} // closed when the connection is broken
	readDone chan struct{} // closed when the reader returns
}

// dialConn connects to addr and negotiates versions.
func dialConn(ctx context.Context, cfg Config, addr string) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	nc, err := cfg.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kclient: dial %s: %w: %w", addr, ErrNotSent, err)
	}
	c := &conn{
		addr:     addr,
		clientID: cfg.ClientID,
		nc:       nc,
		br:       bufio.NewReaderSize(nc, 64<<10),
		log:      cfg.Logger,
		pending:  make(chan *call, maxInFlight),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	if err := c.handshake(dctx); err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// handshake asks for the broker's versions (ApiVersions v0, which every
// broker answers) and picks the highest version both sides speak.
func (c *conn) handshake(ctx context.Context) error {
	// Nobody else holds the connection yet: closing it when ctx ends
	// unblocks the exchange.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	c.corr++
	m, err := protocol.RoundTrip(readWriter{c.br, c.nc}, 0, c.corr, c.clientID, &apiversions.Request{})
	if !stop() && err == nil {
		err = ctx.Err() // closed just after the answer came
	}
	if err != nil {
		// The ApiVersions request may have been written, but it changes
		// nothing on the broker: the caller's request was never sent.
		return fmt.Errorf("kclient: api versions from %s: %w: %w", c.addr, ErrNotSent, err)
	}
	res := m.(*apiversions.Response)
	if res.ErrorCode != 0 {
		return fmt.Errorf("kclient: api versions from %s: %w: error code %d", c.addr, ErrNotSent, res.ErrorCode)
	}
	c.versions = make(map[protocol.ApiKey]int16, len(wanted))
	for _, k := range res.ApiKeys {
		w, ok := wanted[protocol.ApiKey(k.ApiKey)]
		if !ok {
			continue
		}
		v := min(w.max, k.MaxVersion)
		if v >= w.min && v >= k.MinVersion {
			c.versions[protocol.ApiKey(k.ApiKey)] = v
		}
	}
	return nil
}

// readWriter joins a buffered reader with the connection it reads.
type readWriter struct {
	*bufio.Reader
	net.Conn
}

func (rw readWriter) Read(b []byte) (int, error)  { return rw.Reader.Read(b) }
func (rw readWriter) Write(b []byte) (int, error) { return rw.Conn.Write(b) }

// readLoop reads responses in the order requests were written.
func (c *conn) readLoop() {
	defer close(c.readDone)
	for {
		var cl *call
		select {
		case cl = <-c.pending:
		case <-c.done:
			return
		}
		corr, msg, err := protocol.ReadResponse(c.br, cl.key, cl.version)
		if err == nil && corr != cl.corr {
			err = fmt.Errorf("correlation id %d, want %d", corr, cl.corr)
		}
		if err != nil {
			err = fmt.Errorf("kclient: read from %s: %w", c.addr, err)
			cl.res <- result{err: err}
			c.fail(err)
			return
		}
		cl.res <- result{msg: msg}
	}
}

// fail breaks the connection: pending and later requests fail with err.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = err
		close(c.done)
		c.nc.Close()
		if c.log != nil {
			c.log.Debug("connection closed", "addr", c.addr, "error", err)
		}
	})
}

// broken reports whether the connection failed.
func (c *conn) broken() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close breaks the connection and waits for its reader.
func (c *conn) close() {
	c.fail(ErrClosed)
	<-c.readDone
}

// version returns the negotiated version of key.
func (c *conn) version(key protocol.ApiKey) (int16, error) {
	v, ok := c.versions[key]
	if !ok {
		return 0, fmt.Errorf("kclient: %s at %s: %w", key, c.addr, ErrUnsupported)
	}
	return v, nil
}

// roundTrip writes msg and waits for its response. Messages that have no
// response (Produce with acks=0) return (nil, nil) once written.
func (c *conn) roundTrip(ctx context.Context, msg protocol.Message, hasResponse bool) (protocol.Message, error) {
	v, err := c.version(msg.ApiKey())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	cl, err := c.write(ctx, msg, v, hasResponse)
	if err != nil || cl == nil {
		return nil, err
	}
	select {
	case r := <-cl.res:
		return r.msg, r.err
	case <-ctx.Done():
		// The broker may still act on the request; the connection is
		// useless until its response is read, so drop it as Kafka does.
		err := fmt.Errorf("kclient: %s to %s: %w", msg.ApiKey(), c.addr, ctx.Err())
		c.fail(err)
		return nil, err
	case <-c.done:
		select {
		case r := <-cl.res:
			return r.msg, r.err
		default:
		}
		return nil, c.failErr
	}
}

// write sends msg and queues its call for the reader.
func (c *conn) write(ctx context.Context, msg protocol.Message, v int16, hasResponse bool) (*call, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken() {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, c.failErr)
	}
	c.corr++
	var cl *call
	if hasResponse {
		cl = &call{key: msg.ApiKey(), version: v, corr: c.corr, res: make(chan result, 1)}
		select {
		case c.pending <- cl:
		case <-ctx.Done():
			return nil, fmt.Errorf("kclient: %s to %s: %w: %w", msg.ApiKey(), c.addr, ErrNotSent, ctx.Err())
		case <-c.done:
			return nil, fmt.Errorf("%w: %w", ErrNotSent, c.failErr)
		}
	}
	// A write blocked on a stalled link ends when ctx does: closing the
	// connection unblocks it. (No per-request SetWriteDeadline: it races
	// with a concurrent close, and the connection is useless after a
	// partial write anyway.)
	stop := context.AfterFunc(ctx, func() {
		c.fail(fmt.Errorf("kclient: write %s to %s: %w", msg.ApiKey(), c.addr, ctx.Err()))
	})
	err := protocol.WriteRequest(c.nc, v, c.corr, c.clientID, msg)
	stop()
	if err != nil {
		// A partly written frame is never processed: the broker waits for
		// the rest, then sees the connection close.
		err = fmt.Errorf("kclient: write %s to %s: %w: %w", msg.ApiKey(), c.addr, ErrNotSent, err)
		c.fail(err)
		return nil, err
	}
	return cl, nil
}
