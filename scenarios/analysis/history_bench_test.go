package analysis

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
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
// message, the seconds per million messages of cutting a file into shards
// (file mode), of the checker and of the whole analysis (wall clock and
// the process's CPU time, which a loaded machine distorts less), the largest
// table the checker held (memory: the whole table; file: one shard, at
// most 2^19 sequences of one producer whatever the run's length).
// BENCH_MESSAGES overrides the million.
func BenchmarkHistory(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	for _, mode := range []string{"memory", "file"} {
		b.Run(mode, func(b *testing.B) {
			var rec, finish, check, analyze time.Duration
			var finishCPU, checkCPU, analyzeCPU float64 // process CPU seconds: what a loaded machine does not distort
			var bytes, held int64
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
				rec += time.Since(t0)
				tf, cf := time.Now(), processCPU()
				t, err := r.Finish(nil)
				if err != nil {
					b.Fatal(err)
				}
				finish += time.Since(tf)
				finishCPU += processCPU() - cf
				bytes, held = t.Bytes(), t.Bytes()
				if mode == "file" {
					st, err := statSize(r.Path())
					if err != nil {
						b.Fatal(err)
					}
					bytes = st
				}
				t1, c1 := time.Now(), processCPU()
				c, err := CheckHistory(t, 10)
				check += time.Since(t1)
				checkCPU += processCPU() - c1
				if err != nil || c.Acked != int64(n) || c.Lost != 0 || c.Reordered != 0 {
					b.Fatalf("check %+v: %v", c, err)
				}
				if sp, ok := t.(*history.Split); ok {
					held = sp.MaxShardBytes()
				}
				t2, c2 := time.Now(), processCPU()
				Analyze(Run{Start: start, WarmupEnd: start, End: start.Add(10 * time.Second), History: t}, DefaultAnalysisConfig())
				analyze += time.Since(t2)
				analyzeCPU += processCPU() - c2
				t.Release()
			}
			per := float64(b.N) * float64(n)
			b.ReportMetric(float64(bytes)/float64(n), "B/msg")
			b.ReportMetric(float64(held)/1e6, "check-table-MB")
			b.ReportMetric(float64(rec.Nanoseconds())/per, "record-ns/msg")
			b.ReportMetric(finish.Seconds()/per*1e6, "finish-s/Mmsg")
			b.ReportMetric(check.Seconds()/per*1e6, "check-s/Mmsg")
			b.ReportMetric(analyze.Seconds()/per*1e6, "analyze-s/Mmsg")
			b.ReportMetric(finishCPU/per*1e6, "finish-cpu-s/Mmsg")
			b.ReportMetric(checkCPU/per*1e6, "check-cpu-s/Mmsg")
			b.ReportMetric(analyzeCPU/per*1e6, "analyze-cpu-s/Mmsg")
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

// processCPU is this process's user plus system CPU seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
