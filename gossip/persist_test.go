package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/brokerlab/brokerlab/broker"
)

func sampleState() *savedState {
	return &savedState{
		Node: 2, Placement: PlacementSlots, Epoch: 7, LastVote: 6,
		PartVotes: map[string]uint64{"t/0": 5},
		Nodes:     map[int32]string{1: "127.0.0.1:7001", 2: "127.0.0.1:7002"},
		Slots:     []slotClaim{{Start: 0, End: 8191, Owner: 1, Epoch: 1}, {Start: 8192, End: Slots - 1, Owner: 2, Epoch: 6}},
		Topics: []*topicRec{{
			Config: broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 2, MinInsync: 1},
			Stamp:  42,
			Parts:  []partRec{{Replicas: []int32{1, 2}, Leader: 1, Epoch: 6, ISR: []int32{1, 2}, Version: 3}},
		}, {Config: broker.TopicConfig{Name: "gone"}, Stamp: 9, Deleted: true}},
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	want := sampleState()
	b, err := encodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), StateFileName)
	if err := writeState(path, b); err != nil {
		t.Fatal(err)
	}
	got, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, wrote %+v", got, want)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if s, err := readState(filepath.Join(t.TempDir(), "none")); s != nil || err != nil {
		t.Errorf("missing file: %v, %v; want a fresh start", s, err)
	}
}

// Every damage a file can take is ErrBadState, never a panic and never
// an empty start.
func TestStateFileDamage(t *testing.T) {
	good, err := encodeState(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 1; return b }
	bad := func(s *savedState) []byte {
		b, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	noName, twice, wrongParts, badClaim, badPlacement := sampleState(), sampleState(), sampleState(), sampleState(), sampleState()
	noName.Topics[0].Config.Name = ""
	twice.Topics[1].Config.Name = "t"
	wrongParts.Topics[0].Config.Partitions = 2
	badClaim.Slots[0].End = Slots
	badPlacement.Placement = "star"
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short header":      good[:10],
		"magic":             flip(0),
		"length":            flip(11),
		"checksum":          flip(15),
		"body":              flip(20),
		"truncated":         good[:len(good)-1],
		"trailing":          append(append([]byte(nil), good...), 'x'),
		"topic name":        bad(noName),
		"topic twice":       bad(twice),
		"partition count":   bad(wrongParts),
		"slot out of range": bad(badClaim),
		"placement":         bad(badPlacement),
	} {
		if _, err := decodeState(b); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: %v, want ErrBadState", name, err)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	good, err := encodeState(sampleState())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(stateMagic))
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v is not ErrBadState", err)
			}
			return
		}
		again, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeState(again)
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("re-encoded state decodes to %+v, %v; want %+v", back, err, s)
		}
	})
}
