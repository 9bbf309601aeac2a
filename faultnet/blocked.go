package faultnet

// Blocked reports whether traffic from the node named from to addr is
// stopped now: the link is cut, either end is isolated, or either end is
// paused. Transports the Network cannot wrap (memberlist's UDP packets)
// consult it to drop what a cut link would.
func (n *Network) Blocked(from, addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.nameLocked(addr)
	return n.cutLocked(from, to) || n.paused[from] || n.paused[to]
}
