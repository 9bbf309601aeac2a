package gossip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The node's cluster state on disk (Redis Cluster's nodes.conf): without
// it a node restarted after the whole cluster went down knows no slot
// owner and no topic, and nobody is left to tell it.
//
// File layout, one file written whole (temporary file, fsync, rename,
// fsync of the directory), so a reader sees the old or the new state,
// never a mix:
//
//	magic    8 bytes  "BLGSTAT1" (format version 1)
//	length   4 bytes  big-endian length of the body
//	checksum 4 bytes  big-endian CRC-32C of the body
//	body     JSON of savedState
//
// A file that fails any check is an error at Register (ErrBadState), not
// an empty start: a node that forgot its votes could vote twice in one
// epoch.

// StateFileName is the file Config.StateFile names in a broker's data
// directory when the broker command sets it.
const StateFileName = "gossip-state"

// ErrBadState: the state file exists but cannot be used.
var ErrBadState = errors.New("gossip: bad state file")

const stateMagic = "BLGSTAT1"

// maxStateFile bounds what decodeState accepts (a 10,000-partition
// cluster's state is a few MB).
const maxStateFile = 256 << 20

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// savedState is what a node keeps across restarts: its view of the
// cluster and the votes it gave.
type savedState struct {
	Node      int32             `json:"node"`
	Placement string            `json:"placement"`
	Epoch     uint64            `json:"epoch"`
	LastVote  uint64            `json:"last_vote,omitempty"`
	PartVotes map[string]uint64 `json:"part_votes,omitempty"`
	Nodes     map[int32]string  `json:"nodes,omitempty"`
	Slots     []slotClaim       `json:"slots,omitempty"`
	Topics    []*topicRec       `json:"topics,omitempty"`
}

func encodeState(s *savedState) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("gossip: encode state: %w", err)
	}
	out := make([]byte, 16, 16+len(body))
	copy(out, stateMagic)
	binary.BigEndian.PutUint32(out[8:], uint32(len(body)))
	binary.BigEndian.PutUint32(out[12:], crc32.Checksum(body, crc32c))
	return append(out, body...), nil
}

// decodeState checks and decodes a state file's bytes.
func decodeState(b []byte) (*savedState, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 16-byte header", ErrBadState, len(b))
	}
	if string(b[:8]) != stateMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrBadState, b[:8], stateMagic)
	}
	n := binary.BigEndian.Uint32(b[8:])
	if n > maxStateFile || int(n) != len(b)-16 {
		return nil, fmt.Errorf("%w: header says %d bytes of body, file has %d", ErrBadState, n, len(b)-16)
	}
	body := b[16:]
	if sum := crc32.Checksum(body, crc32c); sum != binary.BigEndian.Uint32(b[12:]) {
		return nil, fmt.Errorf("%w: checksum %08x, header says %08x", ErrBadState, sum, binary.BigEndian.Uint32(b[12:]))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var s savedState
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the state", ErrBadState)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	return &s, nil
}

func (s *savedState) validate() error {
	switch {
	case s.Node < 0:
		return fmt.Errorf("node id %d", s.Node)
	case s.Placement != PlacementSlots && s.Placement != PlacementRing:
		return fmt.Errorf("placement %q", s.Placement)
	}
	for id, addr := range s.Nodes {
		if id < 0 || addr == "" {
			return fmt.Errorf("member %d at %q", id, addr)
		}
	}
	for _, c := range s.Slots {
		if c.Start > c.End || int(c.End) >= Slots || c.Owner < 0 {
			return fmt.Errorf("slot claim %d-%d by %d", c.Start, c.End, c.Owner)
		}
	}
	seen := map[string]bool{}
	for _, t := range s.Topics {
		switch {
		case t == nil || t.Config.Name == "":
			return errors.New("a topic without a name")
		case seen[t.Config.Name]:
			return fmt.Errorf("topic %q twice", t.Config.Name)
		case !t.Deleted && (t.Config.Partitions < 1 || int(t.Config.Partitions) != len(t.Parts)):
			return fmt.Errorf("topic %q: %d partitions, %d records", t.Config.Name, t.Config.Partitions, len(t.Parts))
		}
		seen[t.Config.Name] = true
		for i, p := range t.Parts {
			if len(p.Replicas) == 0 || slices.ContainsFunc(p.Replicas, func(r int32) bool { return r < 0 }) {
				return fmt.Errorf("topic %q partition %d: replicas %v", t.Config.Name, i, p.Replicas)
			}
		}
	}
	return nil
}

// readState loads path; a missing file is (nil, nil).
func readState(path string) (*savedState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: read state: %w", err)
	}
	s, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// writeState replaces path with b durably.
func writeState(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("gossip: write state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("gossip: write state: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("gossip: write state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("gossip: write state: sync directory: %w", err)
	}
	return nil
}

// openState loads the state file, when there is one, and starts saving
// every change to it.
func (p *Plane) openState() error {
	if p.cfg.StateFile == "" {
		return nil
	}
	s, err := readState(p.cfg.StateFile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if s != nil {
		err = p.loadStateLocked(s)
	}
	p.saveKick = make(chan struct{}, 1)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.goFunc(p.saveLoop)
	return nil
}

// loadStateLocked merges the saved state into the plane's before it joins.
// Lock should be held.
func (p *Plane) loadStateLocked(s *savedState) error {
	if s.Node != p.self.ID || s.Placement != p.cfg.Placement {
		return fmt.Errorf("%w: %s holds node %d's %s state, this is node %d with %s", ErrBadState,
			p.cfg.StateFile, s.Node, s.Placement, p.self.ID, p.cfg.Placement)
	}
	p.st.merge(&delta{Epoch: s.Epoch, Nodes: s.Nodes, Slots: s.Slots, Topics: s.Topics})
	p.lastVote = s.LastVote
	for k, v := range s.PartVotes {
		p.partVotes[k] = v
	}
	p.log.Info("cluster state loaded", "file", p.cfg.StateFile, "epoch", s.Epoch,
		"members", len(s.Nodes), "topics", len(s.Topics))
	return nil
}

// saveLoop writes the state each time it changed, coalescing changes that
// come while a write runs.
func (p *Plane) saveLoop() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.saveKick:
		}
		if err := p.save(); err != nil && p.ctx.Err() == nil {
			p.log.Error("cluster state not saved", "error", err)
		}
	}
}

// kickSaveLocked asks saveLoop to write the state. Lock should be held
// (or not: it only signals).
func (p *Plane) kickSaveLocked() {
	if p.saveKick == nil {
		return
	}
	select {
	case p.saveKick <- struct{}{}:
	default:
	}
}

// save writes the current state now. Saves are serialised and each takes
// its snapshot inside the serialisation, so the file never goes back to
// an older state.
func (p *Plane) save() error {
	if p.cfg.StateFile == "" {
		return nil
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	full := p.st.full()
	s := &savedState{
		Node: p.self.ID, Placement: p.cfg.Placement, Epoch: full.Epoch, LastVote: p.lastVote,
		Nodes: full.Nodes, Slots: full.Slots, Topics: full.Topics,
	}
	if len(p.partVotes) > 0 {
		s.PartVotes = make(map[string]uint64, len(p.partVotes))
		for k, v := range p.partVotes {
			s.PartVotes[k] = v
		}
	}
	p.mu.Unlock()
	b, err := encodeState(s)
	if err != nil {
		return err
	}
	return writeState(p.cfg.StateFile, b)
}
