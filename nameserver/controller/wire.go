package controller

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Frame kinds. Every frame is a 4-byte big-endian length n (2 <= n <=
// MaxFrameBytes), one kind byte, then n-1 bytes of payload.
const (
	kindRaft    byte = 1 // controller -> controller: a raftpb.Message
	kindRequest byte = 2 // broker -> controller: a JSON envelope
	kindReply   byte = 3 // controller -> broker: a JSON envelope
	kindPush    byte = 4 // controller -> broker: a JSON envelope, no reply
)

// Request types (envelope.Type).
const (
	typeHeartbeat = "heartbeat"       // heartbeatRequest -> GroupState
	typeAlterSSS  = "alter-sync-set"  // alterRequest -> GroupState
	typeGetState  = "get-state"       // stateRequest -> GroupState
	typeLeader    = "get-leader"      // {} -> leaderReply
	typeLeave     = "leave"           // heartbeatRequest -> GroupState
	typeStatePush = "group-state"     // push: GroupState
	maxTypeLength = len(typeAlterSSS) // no type is longer
)

// envelope carries every JSON frame.
type envelope struct {
	Type string          `json:"type,omitempty"`
	ID   uint64          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
	Err  *wireError      `json:"error,omitempty"`
}

// frame is one decoded frame: Raft for kindRaft, Env otherwise.
type frame struct {
	Kind byte
	Raft *raftpb.Message
	Env  envelope
}

// readFrame reads one frame of at most maxBytes and decodes it. An error
// means the connection is unusable and must be closed.
func readFrame(r *bufio.Reader, maxBytes int) (frame, int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 2 || uint64(n) > uint64(maxBytes) {
		return frame{}, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrBadFrame, n, maxBytes)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, 0, err
	}
	f, err := decodeFrame(buf)
	return f, int(n) + 4, err
}

// decodeFrame parses a frame's kind byte and payload.
func decodeFrame(b []byte) (frame, error) {
	if len(b) < 2 {
		return frame{}, fmt.Errorf("%w: empty frame", ErrBadFrame)
	}
	f := frame{Kind: b[0]}
	switch f.Kind {
	case kindRaft:
		f.Raft = &raftpb.Message{}
		if err := proto.Unmarshal(b[1:], f.Raft); err != nil {
			return frame{}, fmt.Errorf("%w: raft message: %v", ErrBadFrame, err)
		}
	case kindRequest, kindReply, kindPush:
		if err := json.Unmarshal(b[1:], &f.Env); err != nil {
			return frame{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
		}
		if err := f.Env.check(f.Kind); err != nil {
			return frame{}, err
		}
	default:
		return frame{}, fmt.Errorf("%w: frame kind %d", ErrBadFrame, f.Kind)
	}
	return f, nil
}

// check applies the envelope rules of each kind.
func (e envelope) check(kind byte) error {
	switch {
	case len(e.Type) > maxTypeLength:
		return fmt.Errorf("%w: type %.20q", ErrBadFrame, e.Type)
	case kind == kindRequest && (e.ID == 0 || e.Type == ""):
		return fmt.Errorf("%w: request without id or type", ErrBadFrame)
	case kind == kindReply && e.ID == 0:
		return fmt.Errorf("%w: reply without id", ErrBadFrame)
	case kind == kindPush && e.Type == "":
		return fmt.Errorf("%w: push without type", ErrBadFrame)
	}
	return nil
}

// encodeRaft frames a Raft message.
func encodeRaft(m *raftpb.Message) ([]byte, error) {
	buf := make([]byte, 5, 5+64)
	buf[4] = kindRaft
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf, nil
}

// encodeEnvelope frames a JSON envelope of the given kind.
func encodeEnvelope(kind byte, e envelope) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(buf, uint32(1+len(body)))
	buf[4] = kind
	return append(buf, body...), nil
}

// decodeBody parses a request or reply body strictly.
func decodeBody(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}
