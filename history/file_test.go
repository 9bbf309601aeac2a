package history

import (
	"bytes"
	"errors"
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

func write(t *testing.T, path string, sends []Send, recvs, finals []Receive, dropFinal bool) {
	t.Helper()
	w, err := Create(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sends {
		w.Send(s)
	}
	for _, r := range recvs {
		w.Receive(r)
	}
	w.BeginFinal()
	for _, r := range finals {
		w.Final(r)
	}
	if dropFinal {
		w.DropFinal()
	}
	if err := w.Meta([]byte(`{"run":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil || w.Close() != nil {
		t.Fatalf("close: %v", err)
	}
}

func memTable(sends []Send, recvs, finals []Receive, dropFinal bool) *Table {
	tb := NewTable(t0)
	for _, s := range sends {
		tb.AddSend(s)
	}
	for _, r := range recvs {
		tb.AddReceive(r)
	}
	tb.BeginFinal()
	for _, r := range finals {
		tb.AddFinal(r)
	}
	if dropFinal {
		tb.DropFinal()
	}
	return tb
}

func sameTable(t *testing.T, a, b *Table) {
	t.Helper()
	type row struct {
		k         Key
		m         Message
		live, fin []Position
	}
	rows := func(tb *Table) []row {
		var out []row
		for k, m := range tb.Messages() {
			out = append(out, row{k, *m, tb.Positions(k, m, false), tb.Positions(k, m, true)})
		}
		return out
	}
	ra, rb := rows(a), rows(b)
	if len(ra) != len(rb) {
		t.Fatalf("%d messages vs %d", len(ra), len(rb))
	}
	for i := range ra {
		x, y := ra[i], rb[i]
		if x.k != y.k || x.m != y.m || len(x.live) != len(y.live) || len(x.fin) != len(y.fin) {
			t.Fatalf("message %d differs:\n%+v\n%+v", i, x, y)
		}
	}
	if a.HasFinal() != b.HasFinal() || a.Receives(false) != b.Receives(false) || a.Receives(true) != b.Receives(true) || a.Last() != b.Last() || !a.Start().Equal(b.Start()) {
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
	path := filepath.Join(t.TempDir(), "h.blh")
	write(t, path, sends, recvs, finals, false)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
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
	path := filepath.Join(f.TempDir(), "seed.blh")
	w, err := Create(path, t0)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range sends {
		w.Send(s)
	}
	for _, r := range recvs {
		w.Receive(r)
	}
	w.BeginFinal()
	for _, r := range finals {
		w.Final(r)
	}
	w.DropFinal()
	_ = w.Meta([]byte("m"))
	_ = w.Close()
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:40])
	f.Add([]byte("BLHIST\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, _, err := Read(bytes.NewReader(data))
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
	})
}
