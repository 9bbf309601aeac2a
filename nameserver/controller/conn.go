package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one framed TCP connection: writes are serialised and bounded by
// a deadline; calls wait for the reply with their id.
type conn struct {
	nc       net.Conn
	r        *bufio.Reader
	maxFrame int
	timeout  time.Duration

	wmu sync.Mutex // serialises writes

	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex // guards next and pending
	next    uint64
	pending map[uint64]chan envelope

	bytesIn, bytesOut, frames atomic.Int64
}

func newConn(nc net.Conn, maxFrame int, timeout time.Duration) *conn {
	return &conn{nc: nc, r: bufio.NewReader(nc), maxFrame: maxFrame, timeout: timeout,
		done: make(chan struct{}), pending: make(map[uint64]chan envelope)}
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

func (c *conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// read reads the next frame; any error closes the connection.
func (c *conn) read() (frame, error) {
	f, n, err := readFrame(c.r, c.maxFrame)
	if err != nil {
		c.close()
		return frame{}, err
	}
	c.bytesIn.Add(int64(n))
	return f, nil
}

// write sends one encoded frame; a failed write closes the connection.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.isClosed() {
		return ErrClosed
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write(b); err != nil {
		c.close()
		return err
	}
	c.bytesOut.Add(int64(len(b)))
	c.frames.Add(1)
	return nil
}

func (c *conn) send(kind byte, e envelope) error {
	b, err := encodeEnvelope(kind, e)
	if err != nil {
		return err
	}
	return c.write(b)
}

func (c *conn) reply(id uint64, body any, err error) error {
	e := envelope{ID: id, Err: encodeError(err)}
	if err == nil && body != nil {
		raw, merr := json.Marshal(body)
		if merr != nil {
			e.Err = encodeError(fmt.Errorf("%w: %v", ErrInternal, merr))
		}
		e.Body = raw
	}
	return c.send(kindReply, e)
}

// call sends a request and decodes the reply's body into out.
func (c *conn) call(ctx context.Context, typ string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ch := make(chan envelope, 1)
	c.mu.Lock()
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.send(kindRequest, envelope{Type: typ, ID: id, Body: raw}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, typ, ctx.Err())
	case <-c.done:
		return fmt.Errorf("%w: %s: connection closed", ErrUnavailable, typ)
	case e := <-ch:
		if e.Err != nil {
			return decodeError(e.Err)
		}
		if out == nil {
			return nil
		}
		return decodeBody(e.Body, out)
	}
}

// deliver hands a reply to its waiting call; unknown ids are dropped (the
// call gave up).
func (c *conn) deliver(e envelope) {
	c.mu.Lock()
	ch := c.pending[e.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- e:
		default:
		}
	}
}
