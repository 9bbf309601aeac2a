package controller

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func frameOf(kind byte, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b, uint32(1+len(payload)))
	b[4] = kind
	return append(b, payload...)
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader: it returns
// frames or errors, never panics, and never accepts a frame breaking the
// envelope rules.
func FuzzReadFrame(f *testing.F) {
	raft, _ := encodeRaft(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(2), From: proto.Uint64(1)})
	req, _ := encodeEnvelope(kindRequest, envelope{Type: typeHeartbeat, ID: 1, Body: []byte(`{"cluster":"c","group":"g","broker_id":1,"node_id":1,"addr":"a:1"}`)})
	rep, _ := encodeEnvelope(kindReply, envelope{ID: 1, Err: &wireError{Code: "not-leader", Leader: "x:1"}})
	for _, seed := range [][]byte{raft, req, rep, frameOf(kindPush, []byte(`{"type":"group-state","body":{}}`)),
		frameOf(9, []byte("x")), frameOf(kindRequest, []byte("{")), {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 1}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 8 {
			fr, _, err := readFrame(r, 1<<16)
			if err != nil {
				if !errors.Is(err, ErrBadFrame) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			switch fr.Kind {
			case kindRaft:
				if fr.Raft == nil {
					t.Fatal("raft frame without a message")
				}
			case kindRequest:
				if fr.Env.ID == 0 || fr.Env.Type == "" {
					t.Fatalf("accepted request %+v", fr.Env)
				}
				var hb heartbeatRequest
				_ = decodeBody(fr.Env.Body, &hb)
			case kindReply:
				if fr.Env.ID == 0 {
					t.Fatalf("accepted reply %+v", fr.Env)
				}
				_ = decodeError(fr.Env.Err)
			case kindPush:
				var st GroupState
				_ = decodeBody(fr.Env.Body, &st)
			default:
				t.Fatalf("accepted kind %d", fr.Kind)
			}
		}
	})
}

// Every frame kind survives an encode/decode round trip.
func TestFrameRoundTrip(t *testing.T) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(3), From: proto.Uint64(1), Term: proto.Uint64(7),
		Entries: []*raftpb.Entry{{Data: []byte("x")}}}
	b, err := encodeRaft(m)
	if err != nil {
		t.Fatal(err)
	}
	fr, n, err := readFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
	if err != nil || n != len(b) || fr.Kind != kindRaft || fr.Raft.GetTerm() != 7 || string(fr.Raft.GetEntries()[0].GetData()) != "x" {
		t.Fatalf("raft round trip: %+v %d %v", fr, n, err)
	}
	b, _ = encodeEnvelope(kindReply, envelope{ID: 9, Err: encodeError(&NotLeaderError{Leader: "h:1"})})
	fr, _, err = readFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var nl *NotLeaderError
	if e := decodeError(fr.Env.Err); !errors.As(e, &nl) || nl.Leader != "h:1" || !errors.Is(e, ErrNotLeader) {
		t.Fatalf("not-leader round trip: %v", e)
	}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(frameOf(kindRequest, []byte(`{"type":"x"}`)))), 1<<20); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("request without id: %v", err)
	}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(frameOf(kindRaft, bytes.Repeat([]byte{1}, 2000)))), 1024); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("oversized frame: %v", err)
	}
}
