package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Wire format: every message the plane sends through memberlist (user
// messages, push-pull state) is one kind byte, then a JSON body:
//
//	0x01 update    {"o":origin,"q":seq,"d":delta}   spread by gossip
//	0x02 request   {"i":id,"f":from,"k":kind,...}    asks a vote or an ack
//	0x03 response  {"i":id,"f":from,"g":granted,"m":reason}
//	0x04 state     delta                              push-pull, the whole state
//
// A delta's slot claims are ranges [a, b] of slots with owner and epoch;
// topics travel whole, partition records one by one. Decoding rejects
// unknown kinds, bodies larger than maxMessage and records that break the
// state's invariants (slot past 16383, negative ids, partitions that do
// not match the topic's count).

// ErrBadMessage is wrapped by every decoding error.
var ErrBadMessage = errors.New("gossip: bad message")

// Message kinds.
const (
	kindUpdate   byte = 1
	kindRequest  byte = 2
	kindResponse byte = 3
	kindState    byte = 4
)

// maxMessage bounds a decoded message.
const maxMessage = 8 << 20

// maxPartitions bounds one topic's partitions on the wire.
const maxPartitions = 1 << 16

// update is one piece of state on its way around the cluster; (Origin,
// Seq) identifies it so a node spreads it once.
type update struct {
	Origin int32  `json:"o"`
	Via    int32  `json:"v"` // the node that sent this copy
	Seq    uint64 `json:"q"`
	Delta  *delta `json:"d"`
}

// Request kinds.
const (
	reqVote = "vote" // a failover election (slots or one ring partition)
	reqISR  = "isr"  // a leader's ISR change, acknowledged by a majority
	// reqLeave asks every leader to drop the asker from its ISRs before it
	// leaves (graceful stop).
	reqLeave = "leave"
)

// request asks a voter for a vote or an acknowledgement.
type request struct {
	ID     uint64 `json:"i"`
	From   int32  `json:"f"`
	Kind   string `json:"k"`
	Epoch  uint64 `json:"e"`
	Failed int32  `json:"x"`
	// Slots are the failed master's slots the candidate claims (slots).
	Slots []slotClaim `json:"s,omitempty"`
	// Part is the partition (ring votes, ISR changes).
	Part *partUpdate `json:"p,omitempty"`
	// Base is the version the ISR change was based on.
	Base int64 `json:"b,omitempty"`
}

type response struct {
	ID      uint64 `json:"i"`
	From    int32  `json:"f"`
	Granted bool   `json:"g"`
	Reason  string `json:"m,omitempty"`
}

func encode(kind byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{kind}, body...), nil
}

// decoded is one decoded message; exactly one field is set.
type decoded struct {
	update   *update
	request  *request
	response *response
	state    *delta
}

// decode parses and checks one message.
func decode(b []byte) (decoded, error) {
	var out decoded
	switch {
	case len(b) < 2:
		return out, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(b))
	case len(b) > maxMessage:
		return out, fmt.Errorf("%w: %d bytes exceed %d", ErrBadMessage, len(b), maxMessage)
	}
	body := b[1:]
	var err error
	switch b[0] {
	case kindUpdate:
		out.update = &update{}
		if err = json.Unmarshal(body, out.update); err == nil {
			if out.update.Delta == nil {
				return out, fmt.Errorf("%w: update without a delta", ErrBadMessage)
			}
			err = out.update.Delta.check()
		}
	case kindRequest:
		out.request = &request{}
		if err = json.Unmarshal(body, out.request); err == nil {
			err = out.request.check()
		}
	case kindResponse:
		out.response = &response{}
		err = json.Unmarshal(body, out.response)
	case kindState:
		out.state = &delta{}
		if err = json.Unmarshal(body, out.state); err == nil {
			err = out.state.check()
		}
	default:
		return out, fmt.Errorf("%w: kind %d", ErrBadMessage, b[0])
	}
	if err != nil && !errors.Is(err, ErrBadMessage) {
		err = fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return out, err
}

func (c slotClaim) check() error {
	if c.Start > c.End || int(c.End) >= Slots || c.Owner < 0 {
		return fmt.Errorf("%w: slot claim %d-%d owner %d", ErrBadMessage, c.Start, c.End, c.Owner)
	}
	return nil
}

func (r partRec) check() error {
	if len(r.Replicas) == 0 || len(r.Replicas) > 256 || len(r.ISR) > len(r.Replicas) || r.Epoch < 0 {
		return fmt.Errorf("%w: partition record with %d replicas, %d in sync, epoch %d",
			ErrBadMessage, len(r.Replicas), len(r.ISR), r.Epoch)
	}
	return nil
}

func (u partUpdate) check() error {
	if u.Topic == "" || u.Partition < 0 || u.Partition >= maxPartitions {
		return fmt.Errorf("%w: partition %q/%d", ErrBadMessage, u.Topic, u.Partition)
	}
	return u.Rec.check()
}

func (t *topicRec) check() error {
	if t == nil || t.Config.Name == "" || t.Config.Partitions < 0 || t.Config.Partitions > maxPartitions {
		return fmt.Errorf("%w: topic record", ErrBadMessage)
	}
	if !t.Deleted && len(t.Parts) != int(t.Config.Partitions) {
		return fmt.Errorf("%w: topic %q has %d partitions, %d records", ErrBadMessage, t.Config.Name, t.Config.Partitions, len(t.Parts))
	}
	for _, p := range t.Parts {
		if err := p.check(); err != nil {
			return err
		}
	}
	return nil
}

func (d *delta) check() error {
	for id := range d.Nodes {
		if id < 0 {
			return fmt.Errorf("%w: node id %d", ErrBadMessage, id)
		}
	}
	for _, c := range d.Slots {
		if err := c.check(); err != nil {
			return err
		}
	}
	for _, t := range d.Topics {
		if err := t.check(); err != nil {
			return err
		}
	}
	for _, p := range d.Parts {
		if err := p.check(); err != nil {
			return err
		}
	}
	return nil
}

func (r *request) check() error {
	if r.Kind != reqVote && r.Kind != reqISR && r.Kind != reqLeave {
		return fmt.Errorf("%w: request kind %q", ErrBadMessage, r.Kind)
	}
	for _, c := range r.Slots {
		if err := c.check(); err != nil {
			return err
		}
	}
	if r.Part != nil {
		return r.Part.check()
	}
	if r.Kind == reqISR {
		return fmt.Errorf("%w: isr request without a partition", ErrBadMessage)
	}
	return nil
}
