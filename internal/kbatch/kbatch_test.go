package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func testRecords() []Record {
	return []Record{
		{Key: []byte("k0"), Value: []byte("v0"), Timestamp: 1000},
		{Value: []byte("no key"), Timestamp: 990, Headers: []RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "nil"}}},
		{Key: []byte("k2"), Value: bytes.Repeat([]byte{7}, 300), Timestamp: 1500},
	}
}

func mustBuild(t testing.TB, recs []Record, opts BuildOptions) []byte {
	t.Helper()
	b, err := Build(recs, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

func TestBuildRoundTrip(t *testing.T) {
	recs := testRecords()
	b := mustBuild(t, recs, BuildOptions{BaseOffset: 40, LeaderEpoch: 3, Idempotent: true, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 5})
	batch, rest, err := Next(b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("Next: %v, rest %d", err, len(rest))
	}
	h := batch.Header
	want := Header{BaseOffset: 40, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: 3, Magic: 2, CRC: h.CRC,
		LastOffsetDelta: 2, BaseTimestamp: 1000, MaxTimestamp: 1500, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 5, RecordCount: 3}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.LastOffset() != 42 || h.NextOffset() != 43 || h.Size() != len(b) {
		t.Fatalf("offsets: last %d next %d size %d", h.LastOffset(), h.NextOffset(), h.Size())
	}
	got, err := Records(b)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records, want %d", len(got), len(recs))
	}
	for i, r := range got {
		w := recs[i]
		if !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || r.Timestamp != w.Timestamp || r.Offset != 40+int64(i) || len(r.Headers) != len(w.Headers) {
			t.Errorf("record %d: got %+v want %+v", i, r, w)
		}
		for j := range r.Headers {
			if r.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(r.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: got %+v want %+v", i, j, r.Headers[j], w.Headers[j])
			}
		}
	}
	if _, err := Build(nil, BuildOptions{}); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("Build(nil) = %v, want ErrBadHeader", err)
	}
}

// TestKmsgAgrees checks Build against franz-go's own decoder, so the format is
// not only self-consistent.
func TestKmsgAgrees(t *testing.T) {
	b := mustBuild(t, testRecords(), BuildOptions{BaseOffset: 7})
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg ReadFrom: %v", err)
	}
	if rb.FirstOffset != 7 || rb.NumRecords != 3 || rb.ProducerID != -1 || rb.FirstSequence != -1 || int(rb.Length) != len(b)-12 {
		t.Fatalf("kmsg sees %+v", rb)
	}
	src := rb.Records
	for i := 0; i < 3; i++ {
		var r kmsg.Record
		if err := r.ReadFrom(src); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		_, n := binary.Varint(src)
		src = src[n+int(r.Length):]
		if r.OffsetDelta != int32(i) {
			t.Fatalf("record %d offset delta %d", i, r.OffsetDelta)
		}
	}
	if len(src) != 0 {
		t.Fatalf("%d bytes left over", len(src))
	}
}

func TestRewriteKeepsCRC(t *testing.T) {
	b := mustBuild(t, testRecords(), BuildOptions{})
	if err := SetBaseOffset(b, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := SetLeaderEpoch(b, 77); err != nil {
		t.Fatal(err)
	}
	batch, _, err := Next(b)
	if err != nil {
		t.Fatalf("Next after rewrite: %v", err)
	}
	if batch.Header.BaseOffset != 1<<40 || batch.Header.PartitionLeaderEpoch != 77 {
		t.Fatalf("rewrite lost: %+v", batch.Header)
	}
	if err := SetBaseOffset(b[:60], 1); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short SetBaseOffset = %v", err)
	}
	if err := SetLeaderEpoch(nil, 1); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short SetLeaderEpoch = %v", err)
	}
}

func TestSplit(t *testing.T) {
	a := mustBuild(t, testRecords()[:1], BuildOptions{})
	b := mustBuild(t, testRecords(), BuildOptions{BaseOffset: 1})
	buf := append(append([]byte{}, a...), b...)
	got, err := Split(buf)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	if len(got) != 2 || !bytes.Equal(got[0].Bytes, a) || !bytes.Equal(got[1].Bytes, b) {
		t.Fatalf("Split gave %d batches", len(got))
	}
	if got, err := Split(nil); err != nil || len(got) != 0 {
		t.Fatalf("Split(nil) = %v, %v", got, err)
	}
	// Every strict prefix that cuts the second batch is truncated.
	for n := len(a) + 1; n < len(buf); n++ {
		if _, err := Split(buf[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Split(prefix %d) = %v, want ErrTruncated", n, err)
		}
	}
}

func TestCorruption(t *testing.T) {
	good := mustBuild(t, testRecords(), BuildOptions{})
	corrupt := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad magic", corrupt(func(b []byte) { b[16] = 1 }), ErrBadMagic},
		{"flipped record byte", corrupt(func(b []byte) { b[len(b)-1] ^= 1 }), ErrBadCRC},
		{"flipped attribute", corrupt(func(b []byte) { b[22] ^= 4 }), ErrBadCRC},
		{"short length", corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 48) }), ErrBadLength},
		{"negative length", corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[8:], 0xffffffff) }), ErrBadLength},
		{"length past end", corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[8:], uint32(len(b))) }), ErrTruncated},
		{"negative last offset delta", corrupt(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 0xffffffff) }), ErrBadHeader},
		{"empty", nil, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Next(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("Next = %v, want %v", err, tc.want)
			}
			if _, err := Split(tc.b); tc.b != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Split = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecordsRejectsCompressed(t *testing.T) {
	b := mustBuild(t, testRecords(), BuildOptions{})
	b[22] |= 1 // gzip
	sum, _ := CRC(b)
	binary.BigEndian.PutUint32(b[17:], sum)
	if _, err := Records(b); !errors.Is(err, ErrCompressed) {
		t.Fatalf("Records = %v, want ErrCompressed", err)
	}
}

func FuzzSplit(f *testing.F) {
	a, _ := Build(testRecords(), BuildOptions{})
	b, _ := Build(testRecords()[:1], BuildOptions{BaseOffset: 3})
	f.Add(append(append([]byte{}, a...), b...))
	f.Add(a[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		batches, err := Split(buf)
		if err != nil {
			if batches != nil {
				t.Fatal("batches returned with an error")
			}
			return
		}
		total := 0
		for _, b := range batches {
			total += len(b.Bytes)
			if b.Header.Size() != len(b.Bytes) || b.Header.Magic != Magic {
				t.Fatalf("inconsistent batch %+v", b.Header)
			}
			if sum, _ := CRC(b.Bytes); sum != b.Header.CRC {
				t.Fatal("crc not checked")
			}
			// Decoding records must never panic, whatever the batch says.
			_, _ = Records(b.Bytes)
		}
		if total != len(buf) {
			t.Fatalf("batches cover %d of %d bytes", total, len(buf))
		}
	})
}

// FuzzRecords feeds arbitrary record bodies inside a batch with a valid CRC,
// which Split alone would rarely reach.
func FuzzRecords(f *testing.F) {
	a, _ := Build(testRecords(), BuildOptions{})
	f.Add(a[HeaderSize:], int32(3))
	f.Add([]byte{0x01}, int32(1))
	f.Fuzz(func(t *testing.T, body []byte, count int32) {
		b, _ := Build([]Record{{}}, BuildOptions{})
		b = append(b[:HeaderSize], body...)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-LengthOverhead))
		binary.BigEndian.PutUint32(b[57:], uint32(count))
		sum, _ := CRC(b)
		binary.BigEndian.PutUint32(b[17:], sum)
		recs, err := Records(b)
		if err == nil && len(recs) != int(count) {
			t.Fatalf("%d records, header says %d", len(recs), count)
		}
	})
}
