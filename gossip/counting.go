package gossip

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// wireCounts are what a member put on and took off the wire through
// memberlist: UDP packets (probes, acks, gossip, small user messages) and
// TCP streams (push-pull state, reliable user messages, fallback probes).
type wireCounts struct {
	packetsOut, packetsIn, packetBytesOut, packetBytesIn atomic.Int64
	streamsOut, streamsIn, streamBytesOut, streamBytesIn atomic.Int64
}

// countingTransport counts everything memberlist sends and receives
// through inner. Received packets and accepted streams pass through a
// forwarding goroutine that Shutdown stops and waits for.
type countingTransport struct {
	memberlist.NodeAwareTransport
	n       *wireCounts
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newCountingTransport(inner memberlist.NodeAwareTransport, n *wireCounts) *countingTransport {
	t := &countingTransport{NodeAwareTransport: inner, n: n, packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn), done: make(chan struct{})}
	t.wg.Add(2)
	go relay(&t.wg, t.done, inner.PacketCh(), t.packets, func(pk *memberlist.Packet) *memberlist.Packet {
		n.packetsIn.Add(1)
		n.packetBytesIn.Add(int64(len(pk.Buf)))
		return pk
	}, nil)
	go relay(&t.wg, t.done, inner.StreamCh(), t.streams, func(c net.Conn) net.Conn {
		n.streamsIn.Add(1)
		return &countingConn{Conn: c, in: &n.streamBytesIn, out: &n.streamBytesOut}
	}, func(c net.Conn) { _ = c.Close() })
	return t
}

// relay passes what in delivers, through count, to out until done closes;
// drop (when set) releases a value out never took.
func relay[T any](wg *sync.WaitGroup, done <-chan struct{}, in <-chan T, out chan<- T, count func(T) T, drop func(T)) {
	defer wg.Done()
	for {
		select {
		case <-done:
			return
		case v := <-in:
			v = count(v)
			select {
			case out <- v:
			case <-done:
				if drop != nil {
					drop(v)
				}
				return
			}
		}
	}
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.countPacket(b)
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.countPacket(b)
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *countingTransport) countPacket(b []byte) {
	t.n.packetsOut.Add(1)
	t.n.packetBytesOut.Add(int64(len(b)))
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.counted(t.NodeAwareTransport.DialTimeout(addr, timeout))
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.counted(t.NodeAwareTransport.DialAddressTimeout(a, timeout))
}

func (t *countingTransport) counted(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	t.n.streamsOut.Add(1)
	return &countingConn{Conn: c, in: &t.n.streamBytesIn, out: &t.n.streamBytesOut}, nil
}

// Shutdown stops the inner transport, then the forwarding goroutines:
// the inner one waits for its listeners, which may be handing over a
// packet that only a running forwarder takes.
func (t *countingTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	t.wg.Wait()
	return err
}

// countingConn counts a stream's bytes both ways.
type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}
