package history

import (
	"slices"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Unix(1_800_000_000, 0)

func TestMessageSize(t *testing.T) {
	if got := unsafe.Sizeof(Message{}); got != MessageSize {
		t.Fatalf("Message is %d bytes, MessageSize says %d", got, MessageSize)
	}
}

func TestTableSendMerge(t *testing.T) {
	tb := NewTable(t0)
	tb.AddSend(Send{Producer: 1, Seq: 3, Partition: 2, Intended: t0.Add(time.Second), Sent: t0.Add(2 * time.Second),
		Done: t0.Add(3 * time.Second), Outcome: Acked, Offset: 7, Attempts: 1})
	// A later failed record of the same message does not undo its ack.
	tb.AddSend(Send{Producer: 1, Seq: 3, Partition: 2, Outcome: Failed, Offset: -1, Err: "x"})
	m := tb.Find(Key{1, 3})
	if m == nil || m.Outcome != Acked || m.Offset != 7 || m.Intended != int64(time.Second) || m.Done != int64(3*time.Second) {
		t.Fatalf("merged send %+v", m)
	}
	// A failed send followed by an acked one: the ack wins.
	tb.AddSend(Send{Producer: 1, Seq: 4, Outcome: Failed, Offset: 9})
	if m := tb.Find(Key{1, 4}); m.Offset != -1 {
		t.Fatalf("a failed send keeps offset -1, got %d", m.Offset)
	}
	tb.AddSend(Send{Producer: 1, Seq: 4, Outcome: Acked, Offset: 8, Attempts: 300})
	if m := tb.Find(Key{1, 4}); m.Outcome != Acked || m.Offset != 8 || m.Attempts != 255 || m.Sent != NoTime {
		t.Fatalf("re-sent message %+v", m)
	}
	if tb.Last() != int64(3*time.Second) {
		t.Fatalf("last %d", tb.Last())
	}
}

func TestTableReceives(t *testing.T) {
	tb := NewTable(t0)
	r := Receive{Producer: 0, Seq: 1, Partition: 2, Offset: 10, Received: t0.Add(5 * time.Second)}
	tb.AddReceive(r)
	r2 := r
	r2.Received = t0.Add(4 * time.Second)
	tb.AddReceive(r2) // the same position again, earlier: no duplicate, earlier first receive
	m := tb.Find(Key{0, 1})
	if !m.Received(false) || m.Duplicated(false) || m.FirstRecv != int64(4*time.Second) || m.HasSend() {
		t.Fatalf("after a re-read: %+v", m)
	}
	r3 := r
	r3.Offset = 11
	tb.AddReceive(r3)
	tb.AddReceive(r3)
	if !m.Duplicated(false) || len(tb.Positions(Key{0, 1}, m, false)) != 2 {
		t.Fatalf("a second position: %+v %v", m, tb.Positions(Key{0, 1}, m, false))
	}
	if tb.Receives(false) != 4 || tb.HasFinal() || m.Received(true) {
		t.Fatal("live receives leaked into the final read")
	}
	tb.AddFinal(r)
	if !tb.HasFinal() || !m.Received(true) || m.Duplicated(true) || tb.Receives(true) != 1 {
		t.Fatalf("final read %+v", m)
	}
	tb.AddFinal(r3)
	tb.DropFinal()
	if tb.HasFinal() || m.Received(true) || m.Duplicated(true) || tb.Positions(Key{0, 1}, m, true) != nil || !m.Duplicated(false) {
		t.Fatalf("after DropFinal %+v", m)
	}
	tb.BeginFinal()
	if !tb.HasFinal() {
		t.Fatal("an empty verification read is still one")
	}
}

// Wild sequence numbers go to the sparse map; iteration merges them in
// order either way, and a sparse entry stays the one entry of its key
// once the dense range reaches it.
func TestTableSparseOrder(t *testing.T) {
	tb := NewTable(t0)
	seqs := []int64{5, -3, 1 << 40, 0, 9000, 2}
	for _, s := range seqs {
		tb.AddSend(Send{Producer: 2, Seq: s, Outcome: Acked})
	}
	// 9000 was beyond the dense window when it came; fill the range up to it.
	for s := int64(0); s < 9100; s++ {
		tb.AddReceive(Receive{Producer: 2, Seq: s, Partition: 0, Offset: s})
	}
	if m := tb.Find(Key{2, 9000}); m == nil || !m.HasSend() || !m.Received(false) {
		t.Fatalf("seq 9000 split between sparse and dense: %+v", m)
	}
	var up, down []int64
	for k := range tb.Messages() {
		up = append(up, k.Seq)
	}
	for k := range tb.Producer(2, true) {
		down = append(down, k.Seq)
	}
	if len(up) != 9100+2 || up[0] != -3 || up[len(up)-1] != 1<<40 || !slices.IsSorted(up) {
		t.Fatalf("ascending: %d keys, first %d last %d sorted %v", len(up), up[0], up[len(up)-1], slices.IsSorted(up))
	}
	slices.Reverse(down)
	if !slices.Equal(up, down) {
		t.Fatal("descending order is not the reverse of ascending")
	}
	if tb.Bytes() <= 0 || tb.Bytes() > 4*chunkSize*MessageSize {
		t.Fatalf("bytes %d", tb.Bytes())
	}
}

func TestTableProducersAndEmptySlots(t *testing.T) {
	tb := NewTable(t0)
	tb.AddSend(Send{Producer: 3, Seq: 10, Outcome: Unknown})
	tb.AddSend(Send{Producer: -1, Seq: 0, Outcome: 0}) // no outcome: recorded as unknown
	if got := tb.Producers(); !slices.Equal(got, []int32{-1, 3}) {
		t.Fatalf("producers %v", got)
	}
	n := 0
	for k, m := range tb.Messages() {
		n++
		if m.Outcome != Unknown {
			t.Fatalf("%v: outcome %v", k, m.Outcome)
		}
	}
	if n != 2 {
		t.Fatalf("%d messages, want 2 (untouched dense slots are skipped)", n)
	}
}

func TestTableRelease(t *testing.T) {
	tb := NewTable(t0)
	for s := range int64(3 * chunkSize) {
		tb.AddSend(Send{Producer: 0, Seq: s, Outcome: Acked, Offset: s})
	}
	if tb.Bytes() != 3*chunkBytes {
		t.Fatalf("bytes %d, want %d", tb.Bytes(), 3*chunkBytes)
	}
	tb.Release()
	tb.Release()
	if tb.Bytes() != 0 || tb.Find(Key{0, 1}) != nil || tb.Last() != NoTime {
		t.Fatal("released table not empty")
	}
	tb.AddSend(Send{Producer: 0, Seq: 1, Outcome: Acked}) // usable again
	if m := tb.Find(Key{0, 1}); m == nil || m.Outcome != Acked {
		t.Fatal("table unusable after release")
	}
}
