package history

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// events is a small random history with every kind of record.
func events(n int, seed uint64) (sends []Send, recvs, finals []Receive) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		p := int32(i % 3)
		seq := int64(i / 3)
		in := t0.Add(time.Duration(i) * time.Millisecond)
		s := Send{Producer: p, Seq: seq, Partition: int32(rng.IntN(4)), Intended: in, Sent: in.Add(time.Millisecond),
			Done: in.Add(3 * time.Millisecond), Outcome: Outcome(1 + rng.IntN(3)), Offset: int64(i), Attempts: 1 + rng.IntN(3)}
		if rng.IntN(10) == 0 {
			s.Sent = time.Time{}
		}
		sends = append(sends, s)
		if rng.IntN(8) != 0 {
			r := Receive{Producer: p, Seq: seq, Partition: s.Partition, Offset: int64(i), Received: s.Done.Add(time.Millisecond)}
			recvs = append(recvs, r)
			finals = append(finals, r)
			if rng.IntN(20) == 0 {
				r.Offset += 1000
				recvs = append(recvs, r)
				finals = append(finals, r)
			}
		}
	}
	recvs = append(recvs, Receive{Producer: 9, Seq: 1 << 50, Partition: 1, Offset: 5, Received: t0})
	return sends, recvs, finals
}

func write(t testing.TB, path string, sends []Send, recvs, finals []Receive, dropFinal bool) {
	t.Helper()
	w, err := Create(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	feed(w, sends, recvs, finals, dropFinal)
	if err := w.Meta([]byte(`{"run":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil || w.Close() != nil {
		t.Fatalf("close: %v", err)
	}
}

// fileBytes writes the events to path and returns the file's bytes.
func fileBytes(t testing.TB, path string, sends []Send, recvs, finals []Receive, dropFinal bool) []byte {
	t.Helper()
	write(t, path, sends, recvs, finals, dropFinal)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func memTable(sends []Send, recvs, finals []Receive, dropFinal bool) *Table {
	tb := NewTable(t0)
	feed(tableSink{tb}, sends, recvs, finals, dropFinal)
	return tb
}

// feed records the events in order: sends, live receives, then the
// verification read, dropped when dropFinal.
func feed(s sink, sends []Send, recvs, finals []Receive, dropFinal bool) {
	for _, x := range sends {
		s.Send(x)
	}
	for _, r := range recvs {
		s.Receive(r)
	}
	s.BeginFinal()
	for _, r := range finals {
		s.Final(r)
	}
	if dropFinal {
		s.DropFinal()
	}
}

type row struct {
	k         Key
	m         Message
	live, fin []Position
}

// rows lists a source's messages in key order, shard by shard (highest
// first) and checks that shards are disjoint and come in that order.
func rows(t *testing.T, src Source) []row {
	t.Helper()
	var out []row
	for tb, err := range src.Shards() {
		if err != nil {
			t.Fatal(err)
		}
		var shard []row
		for k, m := range tb.Messages() {
			shard = append(shard, row{k, *m, tb.Positions(k, m, false), tb.Positions(k, m, true)})
		}
		if len(shard) > 0 && len(out) > 0 && shard[len(shard)-1].k.Compare(out[0].k) >= 0 {
			t.Fatalf("shard ending at %v after one starting at %v", shard[len(shard)-1].k, out[0].k)
		}
		out = append(shard, out...)
	}
	return out
}

func sameTable(t *testing.T, a, b Source) {
	t.Helper()
	ra, rb := rows(t, a), rows(t, b)
	if len(ra) != len(rb) {
		t.Fatalf("%d messages vs %d", len(ra), len(rb))
	}
	for i := range ra {
		x, y := ra[i], rb[i]
		if x.k != y.k || x.m != y.m || len(x.live) != len(y.live) || len(x.fin) != len(y.fin) {
			t.Fatalf("message %d differs:\n%+v\n%+v", i, x, y)
		}
	}
	if a.HasFinal() != b.HasFinal() || a.Receives(false) != b.Receives(false) || a.Receives(true) != b.Receives(true) ||
		a.Last() != b.Last() || !a.Start().Equal(b.Start()) || !maps.Equal(a.AckedEnds(), b.AckedEnds()) {
		t.Fatal("table totals differ")
	}
}

func TestFileRoundTrip(t *testing.T) {
	sends, recvs, finals := events(5000, 1)
	for _, drop := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "h.blh")
		write(t, path, sends, recvs, finals, drop)
		got, meta, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(meta) != `{"run":1}` {
			t.Fatalf("meta %q", meta)
		}
		sameTable(t, got, memTable(sends, recvs, finals, drop))
		st, _ := os.Stat(path)
		want := int64(16 + len(sends)*(1+sendBody) + len(recvs)*(1+receiveBody) + len(finals)*(1+finalBody) + 1 + 5 + 9)
		if drop {
			want++
		}
		if st.Size() != want {
			t.Fatalf("file is %d bytes, want %d", st.Size(), want)
		}
	}
}

func TestFileRecorder(t *testing.T) {
	sends, recvs, finals := events(3000, 2)
	path := filepath.Join(t.TempDir(), "h.blh")
	fr, err := NewFileRecorder(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	mr := NewRecorder(t0)
	for _, r := range []*Recorder{fr, mr} {
		for _, s := range sends {
			r.Send(s)
		}
		for _, x := range recvs {
			r.Receive(x)
		}
		r.BeginFinal()
		for _, x := range finals {
			r.Final(x)
		}
	}
	a, _, _ := fr.Counts()
	if a == 0 || fr.Path() != path || mr.Path() != "" {
		t.Fatal("counts or path")
	}
	ft, err := fr.Finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := mr.Finish(nil)
	sameTable(t, ft, mt)
	if fr.Close() != nil || mr.Close() != nil {
		t.Fatal("close after finish")
	}
}

func TestFileErrors(t *testing.T) {
	sends, recvs, finals := events(100, 3)
	data := fileBytes(t, filepath.Join(t.TempDir(), "h.blh"), sends, recvs, finals, false)
	// Cut inside the 10th send: the first nine are kept.
	cut := 16 + 9*(1+sendBody) + 7
	tb, _, err := Read(bytes.NewReader(data[:cut]))
	if !errors.Is(err, ErrTruncated) || tb == nil {
		t.Fatalf("truncated: %v", err)
	}
	n := 0
	for range tb.Messages() {
		n++
	}
	if n != 9 {
		t.Fatalf("%d messages before the cut, want 9", n)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("BLHIST\x00\x02"), data[8:]...),
		"kind":      append(append([]byte{}, data[:16]...), 99),
		"outcome":   func() []byte { b := append([]byte{}, data[:16+1+sendBody]...); b[16+49] = 7; return b }(),
		"meta size": append(append([]byte{}, data[:16]...), kindMeta, 0xff, 0xff, 0xff, 0xff),
	} {
		if _, _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file read")
	}
}

// FuzzRead: any input decodes to an error or a table, never a panic, and
// every message the table yields was touched by a record.
func FuzzRead(f *testing.F) {
	sends, recvs, finals := events(20, 4)
	seed := fileBytes(f, filepath.Join(f.TempDir(), "seed.blh"), sends, recvs, finals, true)
	f.Add(seed)
	f.Add(seed[:40])
	f.Add([]byte("BLHIST\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, meta, err := Read(bytes.NewReader(data))
		if tb == nil {
			if err == nil {
				t.Fatal("no table and no error")
			}
			return
		}
		for k, m := range tb.Messages() {
			if !m.HasSend() && !m.Received(false) && !m.Received(true) {
				t.Fatalf("%v: an untouched message was yielded", k)
			}
		}
		// Cut into shards of 4 sequences, the same file reads the same.
		dir := t.TempDir()
		path := filepath.Join(dir, "h.blh")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sp, smeta, serr := SplitFile(path, dir, 2)
		if (err == nil) != (serr == nil) || errors.Is(err, ErrTruncated) != errors.Is(serr, ErrTruncated) || !bytes.Equal(meta, smeta) {
			t.Fatalf("read: %v, split: %v", err, serr)
		}
		if sp != nil {
			sameTable(t, tb, sp)
			sp.Release()
		}
	})
}

// A split history holds the same messages and whole-history figures as the
// file read into one table, whatever the shard size, and needs the memory
// of one shard: its tables never hold more than a shard's sequences.
func TestSplitMatchesTable(t *testing.T) {
	sends, recvs, finals := events(5000, 5)
	// Foreign messages: a negative sequence and one far past the rest.
	recvs = append(recvs, Receive{Producer: 1, Seq: -3, Partition: 0, Offset: 1, Received: t0},
		Receive{Producer: 2, Seq: 1 << 40, Partition: 0, Offset: 2, Received: t0})
	// A message acked twice, the second time at a lower offset: the acked
	// end counts both.
	sends = append(sends, Send{Producer: 0, Seq: 1, Partition: 3, Outcome: Acked, Offset: 1 << 20, Done: t0},
		Send{Producer: 0, Seq: 1, Partition: 3, Outcome: Acked, Offset: 5, Done: t0})
	for _, drop := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "h.blh")
		write(t, path, sends, recvs, finals, drop)
		whole, _, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if whole.AckedEnds()[3] != 1<<20+1 {
			t.Fatalf("acked end %v", whole.AckedEnds())
		}
		for _, bits := range []uint{5, DefaultShardBits} {
			sp, meta, err := SplitFile(path, dir, bits)
			if err != nil || string(meta) != `{"run":1}` {
				t.Fatalf("split: %v %q", err, meta)
			}
			sameTable(t, whole, sp)
			for tb, err := range sp.Shards() {
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range tb.Producers() {
					lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
					for k := range tb.Producer(p, false) {
						lo, hi = min(lo, k.Seq), max(hi, k.Seq)
					}
					if len(tb.Producers()) != 1 || hi>>bits != lo>>bits {
						t.Fatalf("a shard of %d bits holds producers %v, sequences %d to %d", bits, tb.Producers(), lo, hi)
					}
				}
			}
			tmp := sp.dir
			sp.Release()
			if _, err := os.Stat(tmp); !os.IsNotExist(err) {
				t.Fatalf("shard directory left behind: %v", err)
			}
		}
	}
	// A file cut short splits up to the cut, as Read reads it.
	dir := t.TempDir()
	path := filepath.Join(dir, "h.blh")
	data := fileBytes(t, path, sends, recvs, finals, false)
	cut := data[:len(data)/2+3]
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	whole, _, rerr := Read(bytes.NewReader(cut))
	sp, _, serr := SplitFile(path, dir, 6)
	if !errors.Is(rerr, ErrTruncated) || !errors.Is(serr, ErrTruncated) || sp == nil {
		t.Fatalf("cut file: read %v, split %v", rerr, serr)
	}
	sameTable(t, whole, sp)
	sp.Release()
}
