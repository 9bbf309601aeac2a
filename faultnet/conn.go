package faultnet

import (
	"bytes"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// readChunk is how much a connection reads from its socket at a time.
const readChunk = 64 << 10

// chunk is data in flight on one direction of a connection, released to the
// far side once the link's current delay has passed since at. Chunks are
// queued in order of at, so they are released in order whatever the delay
// does meanwhile. A chunk with err and no data ends the stream.
type chunk struct {
	data []byte
	at   time.Time
	err  error
}

// conn is the dialing side of a connection through a Network. Two pump
// goroutines own the socket: out writes what the caller wrote once it is due
// and the link is up, in reads the socket into a queue that Read releases
// under the same rule. The listening side is a plain socket and sees the
// stalls and delays as a real network would produce them.
type conn struct {
	nw     *Network
	from   string // dialing node
	addr   string // normalized dialed address, named at each change
	raw    net.Conn
	rd, wd *deadline
	rmu    sync.Mutex // one Read at a time
	wmu    sync.Mutex // one Write at a time, so each Write stays contiguous
	pumps  sync.WaitGroup

	mu       sync.Mutex // guards everything below
	link     linkState
	wake     chan struct{} // closed and replaced by signalLocked
	waiting  bool          // someone holds wake
	out      []chunk       // written, not yet sent
	outLen   int
	in       []chunk // received, not yet read
	inLen    int
	outErr   error // the socket failed a write; writes fail from now on
	closed   bool  // Close was called
	closedAt time.Time
	killed   bool // the socket is closed; pumps are stopping
	reset    bool // killed by Network.Reset
}

// newConn wraps raw and starts its pumps. It runs under n.mu.
func newConn(n *Network, from, addr string, raw net.Conn, ls linkState) *conn {
	c := &conn{
		nw: n, from: from, addr: addr, raw: raw,
		rd: newDeadline(), wd: newDeadline(),
		link: ls, wake: make(chan struct{}),
	}
	c.goPump(c.sendLoop)
	c.goPump(c.receiveLoop)
	return c
}

func (c *conn) goPump(f func()) {
	c.nw.wg.Add(1)
	c.pumps.Add(1)
	go func() {
		defer c.nw.wg.Done()
		defer c.pumps.Done()
		f()
	}()
}

// setLink installs a new link state. It runs under c.nw.mu.
func (c *conn) setLink(ls linkState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.link = ls
	c.signalLocked()
}

// signalLocked wakes everything waiting in waitLocked. Lock should be held.
func (c *conn) signalLocked() {
	if c.waiting {
		close(c.wake)
		c.wake = make(chan struct{})
		c.waiting = false
	}
}

// waitLocked releases the lock until signalLocked, until due (if not zero) or
// until dl is closed. Lock should be held; it is held again on return.
func (c *conn) waitLocked(due time.Time, dl <-chan struct{}) {
	c.waiting = true
	wake := c.wake
	c.mu.Unlock()
	defer c.mu.Lock()
	var fire <-chan time.Time
	if !due.IsZero() {
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		fire = t.C
	}
	select {
	case <-wake:
	case <-fire:
	case <-dl:
	}
}

// dueLocked returns when a chunk is released. Lock should be held.
func (c *conn) dueLocked(ch chunk) time.Time { return ch.at.Add(c.link.delay) }

func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if err := c.stateErrLocked("read"); err != nil {
			return 0, err
		}
		dl := c.rd.wait()
		if isClosed(dl) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return 0, nil
		}
		var due time.Time
		if !c.link.stalled && len(c.in) > 0 {
			head := &c.in[0]
			if d := c.dueLocked(*head); time.Now().Before(d) {
				due = d
			} else if len(head.data) == 0 {
				return 0, head.err // stays queued: every later Read fails too
			} else {
				n := copy(p, head.data)
				head.data = head.data[n:]
				if len(head.data) == 0 {
					c.in[0] = chunk{}
					c.in = c.in[1:]
				}
				c.inLen -= n
				c.link.in.Add(int64(n))
				c.signalLocked()
				return n, nil
			}
		}
		c.waitLocked(due, dl)
	}
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	written := 0
	for {
		if err := c.stateErrLocked("write"); err != nil {
			return written, err
		}
		if c.outErr != nil {
			return written, c.outErr
		}
		dl := c.wd.wait()
		if isClosed(dl) {
			return written, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return written, nil
		}
		if room := c.nw.opts.bufferBytes - c.outLen; room > 0 {
			k := min(room, len(p))
			c.out = append(c.out, chunk{data: bytes.Clone(p[:k]), at: time.Now().Add(lossPenalty(c.link.loss, k))})
			c.outLen += k
			p = p[k:]
			written += k
			c.signalLocked()
			continue
		}
		c.waitLocked(time.Time{}, dl)
	}
}

// sendLoop writes due chunks to the socket while the link is up. After Close
// it keeps going until the queue is empty or the linger time is over.
func (c *conn) sendLoop() {
	c.mu.Lock()
	for {
		if c.killed {
			c.mu.Unlock()
			return
		}
		lingerEnd := c.closedAt.Add(c.nw.opts.linger)
		if c.closed && (len(c.out) == 0 || !time.Now().Before(lingerEnd)) {
			c.mu.Unlock()
			c.kill(false)
			return
		}
		var due time.Time
		if !c.link.stalled && len(c.out) > 0 {
			now := time.Now()
			if d := c.dueLocked(c.out[0]); now.Before(d) {
				due = d
			} else {
				c.sendDueLocked(now)
				continue
			}
		}
		if c.closed && (due.IsZero() || lingerEnd.Before(due)) {
			due = lingerEnd
		}
		c.waitLocked(due, nil)
	}
}

// sendDueLocked writes every chunk due by now with one writev, without the
// lock. Lock should be held.
func (c *conn) sendDueLocked(now time.Time) {
	var bufs net.Buffers
	k, size := 0, 0
	for k < len(c.out) && !now.Before(c.dueLocked(c.out[k])) {
		bufs = append(bufs, c.out[k].data)
		size += len(c.out[k].data)
		k++
	}
	ctr := c.link.out
	c.mu.Unlock()
	n, err := bufs.WriteTo(c.raw)
	ctr.Add(n)
	c.mu.Lock()
	if c.killed { // kill dropped the queue
		return
	}
	clear(c.out[:k]) // only Write appends meanwhile, so these are the k sent
	c.out = c.out[k:]
	c.outLen -= size
	if err != nil && c.outErr == nil {
		c.outErr = err
		clear(c.out)
		c.out, c.outLen = nil, 0
	}
	c.signalLocked()
}

// receiveLoop reads the socket into the in queue, stamping each chunk with
// its release time, and stops reading while the queue is full.
func (c *conn) receiveLoop() {
	buf := make([]byte, readChunk)
	c.mu.Lock()
	for {
		for c.inLen >= c.nw.opts.bufferBytes && !c.killed && !c.closed {
			c.waitLocked(time.Time{}, nil)
		}
		if c.killed || c.closed {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		n, err := c.raw.Read(buf)
		c.mu.Lock()
		now := time.Now()
		if n > 0 {
			c.in = append(c.in, chunk{data: bytes.Clone(buf[:n]), at: now.Add(lossPenalty(c.link.loss, n))})
			c.inLen += n
		}
		if err != nil {
			c.in = append(c.in, chunk{err: err, at: now})
			c.signalLocked()
			c.mu.Unlock()
			return
		}
		c.signalLocked()
	}
}

// Close closes the connection. Data still queued (delayed or held by a
// stall) keeps being delivered for up to the Network's linger time, as a
// kernel delivers a closed socket's send buffer; otherwise Close returns once
// the connection's goroutines have stopped.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.closedAt = time.Now()
	lingering := len(c.out) > 0 && !c.killed
	c.signalLocked()
	c.mu.Unlock()
	if !lingering {
		c.kill(false)
		c.pumps.Wait()
	}
	return nil
}

// kill closes the socket at once, with an RST when reset is set, and drops
// everything queued.
func (c *conn) kill(reset bool) {
	c.mu.Lock()
	if c.killed {
		c.mu.Unlock()
		return
	}
	c.killed = true
	c.reset = reset
	clear(c.out)
	clear(c.in)
	c.out, c.in, c.outLen, c.inLen = nil, nil, 0, 0
	c.signalLocked()
	c.mu.Unlock()
	if tc, ok := c.raw.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = c.raw.Close()
	c.rd.stop()
	c.wd.stop()
	c.nw.remove(c)
}

// stateErrLocked is the error of an operation on a closed or reset
// connection. Lock should be held.
func (c *conn) stateErrLocked(op string) error {
	switch {
	case c.closed:
		return c.opErr(op, net.ErrClosed)
	case c.reset:
		return c.opErr(op, os.NewSyscallError(op, syscall.ECONNRESET))
	case c.killed:
		return c.opErr(op, net.ErrClosed)
	}
	return nil
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: c.raw.LocalAddr().Network(), Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: err}
}

func (c *conn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return nil
}
