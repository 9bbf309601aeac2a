package analysis

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
)

// benchHistory records n messages from 4 producers over 6 partitions, each
// sent, acked, received live once and read once by the verification read,
// into rec.
func benchHistory(rec *history.Recorder, start time.Time, n int) {
	const producers, partitions = 4, 6
	next := make([]int64, partitions)
	for i := range n {
		p := int32(i % producers)
		seq := int64(i / producers)
		part := int32(i % partitions)
		in := start.Add(time.Duration(i) * 10 * time.Microsecond)
		rec.Send(history.Send{Producer: p, Seq: seq, Partition: part, Intended: in, Sent: in,
			Done: in.Add(time.Millisecond), Outcome: history.Acked, Offset: next[part], Attempts: 1})
		r := history.Receive{Producer: p, Seq: seq, Partition: part, Offset: next[part], Received: in.Add(2 * time.Millisecond)}
		rec.Receive(r)
		next[part]++
	}
	rec.BeginFinal()
	for i := range n { // the verification read: partition by partition
		p := int32(i % producers)
		rec.Final(history.Receive{Producer: p, Seq: int64(i / producers), Partition: int32(i % partitions), Offset: int64(i / partitions)})
	}
}

// BenchmarkHistory records a million sends and receives (and the
// verification read) and runs the checker and the whole analysis over
// them, in memory and streamed to a file. Metrics: history bytes per
// message (memory: the table; file: bytes on disk), recording time per
// message, and checker and analysis seconds per million messages.
func BenchmarkHistory(b *testing.B) {
	const n = 1_000_000
	for _, mode := range []string{"memory", "file"} {
		b.Run(mode, func(b *testing.B) {
			var rec, check, analyze time.Duration
			var bytes int64
			for range b.N {
				start := time.Now()
				r := history.NewRecorder(start)
				if mode == "file" {
					var err error
					if r, err = history.NewFileRecorder(filepath.Join(b.TempDir(), "h"+HistoryExt), start); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				benchHistory(r, start, n)
				t, err := r.Finish(nil)
				if err != nil {
					b.Fatal(err)
				}
				rec += time.Since(t0)
				bytes = t.Bytes()
				if mode == "file" {
					st, err := statSize(r.Path())
					if err != nil {
						b.Fatal(err)
					}
					bytes = st
				}
				t1 := time.Now()
				c := CheckTable(t, 10)
				check += time.Since(t1)
				if c.Acked != n || c.Lost != 0 || c.Reordered != 0 {
					b.Fatalf("check %+v", c)
				}
				t2 := time.Now()
				Analyze(Run{Start: start, WarmupEnd: start, End: start.Add(10 * time.Second), History: t}, DefaultAnalysisConfig())
				analyze += time.Since(t2)
				t.Release()
			}
			per := float64(b.N) * n
			b.ReportMetric(float64(bytes)/n, "B/msg")
			b.ReportMetric(float64(rec.Nanoseconds())/per, "record-ns/msg")
			b.ReportMetric(check.Seconds()/per*1e6, "check-s/Mmsg")
			b.ReportMetric(analyze.Seconds()/per*1e6, "analyze-s/Mmsg")
		})
	}
}

func statSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
