package gossip

// Masters returns the nodes owning at least one slot in this node's view
// (gossip); under the ring, every member.
func (p *Plane) Masters() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.votersLocked()
}

// SlotsOf returns how many slots node owns in this node's view.
func (p *Plane) SlotsOf(node int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.st.slotsOf(node))
}

// Failed returns the nodes this node holds FAIL.
func (p *Plane) Failed() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sortedKeys(p.failed)
}
