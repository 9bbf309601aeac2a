package nameserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Message types. Requests travel in both directions on a connection; every
// request gets exactly one message of type typeReply with the request's id.
const (
	typeReply       = "reply"
	typeRegister    = "register"     // broker -> name server
	typeUnregister  = "unregister"   // broker -> name server
	typeRoute       = "route"        // client -> name server
	typeClusterInfo = "cluster-info" // client -> name server
	typeSnapshot    = "snapshot"     // broker -> name server
	typeCreateTopic = "create-topic" // client -> name server
	typeDeleteTopic = "delete-topic" // client -> name server
	typeTopicConfig = "topic-config" // name server -> broker (push)
	typeTopicDelete = "topic-delete" // name server -> broker (push)
)

// frameHeader is the size of the big-endian length prefix.
const frameHeader = 4

// message is the envelope of every frame.
type message struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	Body json.RawMessage `json:"body,omitempty"`
	Err  *wireError      `json:"error,omitempty"`
}

// readFrame reads one length-prefixed frame of at most maxBytes payload.
func readFrame(r io.Reader, maxBytes int) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(maxBytes) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxBytes)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// decodeMessage parses a frame's payload.
func decodeMessage(payload []byte) (message, error) {
	var m message
	if err := json.Unmarshal(payload, &m); err != nil {
		return message{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if m.Type == "" {
		return message{}, fmt.Errorf("%w: no message type", ErrBadFrame)
	}
	if m.ID == 0 {
		return message{}, fmt.Errorf("%w: message id 0", ErrBadFrame)
	}
	return m, nil
}

// encodeFrame returns the length-prefixed frame of m. The envelope is
// written by hand so that a large body (a registration with thousands of
// topics) is copied once rather than re-validated by json.Marshal; m.Body
// must be valid JSON (it always comes from json.Marshal or a decoded frame).
func encodeFrame(m message) ([]byte, error) {
	typ, err := json.Marshal(m.Type)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, frameHeader, frameHeader+len(m.Body)+len(typ)+64)
	buf = append(buf, `{"type":`...)
	buf = append(buf, typ...)
	buf = append(buf, `,"id":`...)
	buf = strconv.AppendUint(buf, m.ID, 10)
	if len(m.Body) > 0 {
		buf = append(buf, `,"body":`...)
		buf = append(buf, m.Body...)
	}
	if m.Err != nil {
		e, err := json.Marshal(m.Err)
		if err != nil {
			return nil, err
		}
		buf = append(buf, `,"error":`...)
		buf = append(buf, e...)
	}
	buf = append(buf, '}')
	n := len(buf) - frameHeader
	if n > math.MaxInt32 {
		return nil, ErrFrameTooLarge
	}
	binary.BigEndian.PutUint32(buf, uint32(n))
	return buf, nil
}

// decodeBody unmarshals a message body into v, rejecting unknown fields so
// that a mistyped field is an error rather than a silent zero.
func decodeBody(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after body", ErrBadRequest)
	}
	return nil
}

// inbound is a received message with the size of its frame, prefix
// included.
type inbound struct {
	message
	size int
}

// peerConfig configures a peer.
type peerConfig struct {
	maxFrame int
	timeout  time.Duration // write deadline of one frame
	log      *slog.Logger
	// onRequest handles a request from the other side. It runs on the read
	// loop, so it must not wait on a reply from the same peer; it answers
	// with reply, now or later.
	onRequest func(p *peer, req inbound)
}

// peer is one end of a connection: it writes whole frames under a lock,
// matches replies to calls by id and hands requests to its handler. Its read
// loop is run by the peer's owner (readLoop), which decides its goroutine.
type peer struct {
	conn net.Conn
	cfg  peerConfig
	done chan struct{} // closed by close

	wmu sync.Mutex // serialises frame writes

	mu      sync.Mutex // guards the fields below
	nextID  uint64
	pending map[uint64]chan inbound
	err     error // why the peer closed

	bytesIn, bytesOut atomic.Int64
}

func newPeer(conn net.Conn, cfg peerConfig) *peer {
	return &peer{conn: conn, cfg: cfg, done: make(chan struct{}), pending: make(map[uint64]chan inbound)}
}

// readLoop reads frames until the connection fails or a frame is bad, then
// closes the peer and returns why.
func (p *peer) readLoop() error {
	for {
		payload, err := readFrame(p.conn, p.cfg.maxFrame)
		if err != nil {
			return p.closeWith(err)
		}
		p.bytesIn.Add(int64(len(payload) + frameHeader))
		m, err := decodeMessage(payload)
		if err != nil {
			return p.closeWith(err)
		}
		in := inbound{message: m, size: len(payload) + frameHeader}
		if m.Type == typeReply {
			p.deliver(in)
			continue
		}
		if p.cfg.onRequest == nil {
			_, _ = p.reply(m.ID, nil, fmt.Errorf("%w: unexpected request %q", ErrBadRequest, m.Type))
			continue
		}
		p.cfg.onRequest(p, in)
	}
}

// deliver hands a reply to the call waiting for it; replies nobody waits
// for (the call timed out) are dropped.
func (p *peer) deliver(in inbound) {
	p.mu.Lock()
	ch, ok := p.pending[in.ID]
	delete(p.pending, in.ID)
	p.mu.Unlock()
	if ok {
		ch <- in // buffered
	}
}

// write sends one frame and returns its size.
func (p *peer) write(m message) (int, error) {
	frame, err := encodeFrame(m)
	if err != nil {
		return 0, err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	select {
	case <-p.done:
		return 0, p.closedErr()
	default:
	}
	if p.cfg.timeout > 0 {
		_ = p.conn.SetWriteDeadline(time.Now().Add(p.cfg.timeout))
	}
	if _, err := p.conn.Write(frame); err != nil {
		return 0, p.closeWith(err)
	}
	p.bytesOut.Add(int64(len(frame)))
	return len(frame), nil
}

// reply answers request id with body or err.
func (p *peer) reply(id uint64, body any, err error) (int, error) {
	m := message{Type: typeReply, ID: id, Err: encodeError(err)}
	if err == nil && body != nil {
		raw, merr := json.Marshal(body)
		if merr != nil {
			m.Err = encodeError(fmt.Errorf("%w: encoding reply: %v", ErrInternal, merr))
		} else {
			m.Body = raw
		}
	}
	return p.write(m)
}

// callStats are the sizes of one call's frames.
type callStats struct{ sent, received int }

// call sends a request and waits for its reply, decoding the body into out
// (when non-nil). An error reply comes back as the matching sentinel.
func (p *peer) call(ctx context.Context, typ string, body, out any) (callStats, error) {
	var st callStats
	raw, err := json.Marshal(body)
	if err != nil {
		return st, fmt.Errorf("nameserver: encoding %s: %w", typ, err)
	}
	ch := make(chan inbound, 1)
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return st, p.closedErr()
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
	}()
	if st.sent, err = p.write(message{Type: typ, ID: id, Body: raw}); err != nil {
		return st, err
	}
	select {
	case m := <-ch:
		st.received = m.size
		if m.Err != nil {
			return st, decodeError(m.Err)
		}
		if out != nil {
			if err := decodeBody(m.Body, out); err != nil {
				return st, fmt.Errorf("nameserver: reply to %s: %w", typ, err)
			}
		}
		return st, nil
	case <-p.done:
		return st, p.closedErr()
	case <-ctx.Done():
		return st, fmt.Errorf("nameserver: %s: %w", typ, ctx.Err())
	}
}

// close closes the connection; pending and later calls fail with ErrClosed.
func (p *peer) close() { _ = p.closeWith(ErrClosed) }

// closeWith closes the peer, recording the first reason, and returns it.
func (p *peer) closeWith(reason error) error {
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return err
	}
	p.err = reason
	p.mu.Unlock()
	close(p.done)
	_ = p.conn.Close()
	return reason
}

// closedErr is the error calls on a closed peer return.
func (p *peer) closedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil || errors.Is(p.err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, p.err)
}

// isClosed reports whether the peer has been closed.
func (p *peer) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
