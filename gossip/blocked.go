package gossip

import (
	"errors"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrLinkBlocked is what a dial over a blocked link returns.
var ErrLinkBlocked = errors.New("gossip: link blocked")

// BlockingTransport wraps a memberlist transport for Config.WrapTransport:
// packets to an address blocked says is blocked are dropped silently (as a
// cut network drops them) and dials to it fail. Runtimes and tests use it
// to cut gossip as their fault layer cuts every other link.
func BlockingTransport(inner memberlist.NodeAwareTransport, blocked func(addr string) bool) memberlist.NodeAwareTransport {
	return &blockingTransport{NodeAwareTransport: inner, blocked: blocked}
}

type blockingTransport struct {
	memberlist.NodeAwareTransport
	blocked func(addr string) bool
}

func (t *blockingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.blocked(addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *blockingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *blockingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.blocked(addr) {
		return nil, ErrLinkBlocked
	}
	return t.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (t *blockingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, ErrLinkBlocked
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
}
