package analysis

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// faultyHistory is a recorded-looking history with injected loss,
// duplicates, reordering, a message no producer sent, an indeterminate
// one, a live read that saw a message the final log lost, and a 2 s
// partition outage, replayed in a shuffled (arrival-like) order.
func faultyHistory(seed uint64) (Run, []func(*history.Recorder)) {
	run := Synthetic{Rate: 2000, Duration: 20 * time.Second, Warmup: 2 * time.Second, Partitions: 4,
		AckLatency: 2 * time.Millisecond, RecvDelay: 5 * time.Millisecond,
		Edit: func(s *history.Send) bool {
			off := s.Intended.Sub(SyntheticStart)
			switch {
			case s.Partition == 1 && off >= 9*time.Second && off < 11*time.Second:
				s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
				s.Done = s.Intended.Add(50 * time.Millisecond)
				return false
			case s.Seq%997 == 0: // lost: acked, never in the log
				return false
			case s.Seq%1201 == 0: // retried with a lost ack: acked twice
				s.Attempts = 2
			}
			return true
		}}.Run()
	run.Faults = []FaultEvent{{At: SyntheticAt(9 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/1", Node: "broker 1"}}
	rng := rand.New(rand.NewPCG(seed, 7))
	final := append([]history.Receive(nil), run.Receives...)
	for i := range final {
		s := final[i]
		switch {
		case s.Seq%1201 == 0: // written twice: a duplicate at a later offset
			d := s
			d.Offset += 100_000
			final = append(final, d)
		case s.Seq%1301 == 0 && i+8 < len(final) && final[i+8].Partition == s.Partition: // swapped in the log
			final[i].Offset, final[i+8].Offset = final[i+8].Offset, final[i].Offset
		case s.Seq%1409 == 0: // seen live, truncated from the log afterwards
			final[i].Seq = -1 // dropped below
		}
	}
	final = deleteSeq(final, -1)
	final = append(final, history.Receive{Producer: 42, Seq: 7, Partition: 2, Offset: 999_999}) // never sent
	// A failed send the broker had written after all: indeterminate.
	for _, s := range run.Sends {
		if s.Outcome == history.Failed {
			final = append(final, history.Receive{Producer: s.Producer, Seq: s.Seq, Partition: s.Partition, Offset: 500_000})
			break
		}
	}
	run.Final = final
	// Arrival order: sends complete out of order, receives interleave.
	var ops []func(*history.Recorder)
	for _, s := range run.Sends {
		ops = append(ops, func(r *history.Recorder) { r.Send(s) })
	}
	for _, x := range run.Receives {
		ops = append(ops, func(r *history.Recorder) { r.Receive(x) })
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	ops = append(ops, func(r *history.Recorder) { r.BeginFinal() })
	for _, x := range final {
		ops = append(ops, func(r *history.Recorder) { r.Final(x) })
	}
	return run, ops
}

func deleteSeq(rs []history.Receive, seq int64) []history.Receive {
	out := rs[:0]
	for _, r := range rs {
		if r.Seq != seq {
			out = append(out, r)
		}
	}
	return out
}

// The checker and the analysis give the same verdicts on a history kept in
// memory and on the same history streamed to a file and read back.
func TestStreamedHistoryMatchesMemory(t *testing.T) {
	run, ops := faultyHistory(1)
	meta := run
	meta.Sends, meta.Receives, meta.Final = nil, nil, nil
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "history-coordinator-0"+HistoryExt)
	fileRec, err := history.NewFileRecorder(path, run.Start.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	memRec := history.NewRecorder(run.Start)
	for _, op := range ops {
		op(fileRec)
		op(memRec)
	}
	memTable, _ := memRec.Finish(nil)
	if _, err := fileRec.Finish(metaJSON); err != nil {
		t.Fatal(err)
	}
	fromFile, err := ReadHistoryFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inMem := meta
	inMem.History = memTable
	cfg := DefaultAnalysisConfig()
	mem, file, events := Analyze(inMem, cfg), Analyze(fromFile, cfg), Analyze(run, cfg)

	c := mem.Check
	if c.Lost == 0 || c.Duplicated == 0 || c.Reordered == 0 || c.Unexpected != 1 || c.Indeterminate != 1 {
		t.Fatalf("the injected faults were not all found: %+v", c)
	}
	// Known answers: every 997th acked message lost, plus every 1409th
	// (seen live, not in the final log); every 1201st duplicated.
	var lost, dups int64
	for _, s := range run.Sends {
		if s.Outcome != history.Acked {
			continue
		}
		if s.Seq%997 == 0 || (s.Seq%1409 == 0 && s.Seq%1201 != 0 && s.Seq%1301 != 0) {
			lost++
		} else if s.Seq%1201 == 0 {
			dups++
		}
	}
	if c.Lost != lost || c.Duplicated != dups {
		t.Errorf("lost %d duplicated %d, want %d and %d", c.Lost, c.Duplicated, lost, dups)
	}
	if len(mem.Faults) != 1 || mem.Faults[0].UnavailableS < 1.9 || mem.Faults[0].UnavailableS > 2.1 {
		t.Errorf("unavailability %+v", mem.Faults)
	}
	// The whole result, samples and histograms included (as JSON: the
	// run's times come back from the file without a monotonic reading).
	a, _ := json.Marshal(mem)
	for name, got := range map[string]TopologyResult{"file": file, "events": events} {
		if b, _ := json.Marshal(got); string(a) != string(b) {
			t.Errorf("%s analysis differs from the in-memory one:\nmemory %s\n%s %s", name, a, name, b)
		}
	}
	fromFile.History.Release()

	// The file cut into small shards (64 and 4096 sequences): the reorder
	// walk and the samples cross shard boundaries, and the verdicts, the
	// samples and every figure stay the same, while the checker holds one
	// shard at a time.
	for _, bits := range []uint{6, 12} {
		sp, _, err := history.SplitFile(path, t.TempDir(), bits)
		if err != nil {
			t.Fatal(err)
		}
		split := fromFile
		split.History = sp
		got := Analyze(split, cfg)
		if b, _ := json.Marshal(got); string(a) != string(b) {
			t.Errorf("%d-bit shards: analysis differs from the in-memory one:\nmemory %s\nshards %s", bits, a, b)
		}
		for _, samples := range []int{0, 1, 3, 1000} {
			want, _ := CheckHistory(memTable, samples)
			got, err := CheckHistory(sp, samples)
			if err != nil {
				t.Fatal(err)
			}
			if x, y := fmt.Sprintf("%+v", want), fmt.Sprintf("%+v", got); x != y {
				t.Errorf("%d-bit shards, %d samples: verdicts differ:\nmemory %s\nshards %s", bits, samples, x, y)
			}
		}
		if sp.ShardCount() < 40_000>>bits || sp.MaxShardBytes() > max(int64(4096*history.MessageSize), (1<<bits)*history.MessageSize)+64<<10 {
			t.Errorf("%d-bit shards: %d shards, largest table %d bytes (whole table %d)", bits, sp.ShardCount(), sp.MaxShardBytes(), memTable.Bytes())
		}
		sp.Release()
	}
}
