package analysis

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}

func TestAnalyzeSteadyRun(t *testing.T) {
	run := Synthetic{Rate: 1000, Duration: 20 * time.Second, Warmup: 2 * time.Second, Partitions: 3,
		AckLatency: 5 * time.Millisecond, RecvDelay: 1500 * time.Millisecond}.Run()
	res := Analyze(run, DefaultAnalysisConfig())
	s := res.Summary
	if s.Sent != 20000 || s.Acked != 20000 || s.Failed != 0 || s.Lost != 0 || s.Duplicated != 0 || s.Reordered != 0 {
		t.Errorf("counts: %+v", s)
	}
	near(t, "publish rate", s.PublishRate, 1000, 10)
	near(t, "publish p50 ms", s.PublishP50Ms, 5, 0.01)
	near(t, "publish p99.9 ms", s.PublishP999Ms, 5, 0.01)
	near(t, "e2e p99 ms", s.E2EP99Ms, 1505, 1)
	if res.Latency.Publish.Count != 18000 {
		t.Errorf("publish latency count %d, want 18000 (warm-up excluded)", res.Latency.Publish.Count)
	}
	if s.MaxUnavailabilityS != 0 || s.DetectionS != nil || len(res.Faults) != 0 {
		t.Errorf("no faults, got %+v %v", s, res.Faults)
	}
	// Series: 1000 sent and acked per second; backlog is what 1.5 s of
	// receive delay holds; consumption starts 1.5 s late.
	if len(res.Series.Sent) < 22 {
		t.Fatalf("series too short: %d", len(res.Series.Sent))
	}
	for _, i := range []int{0, 5, 19} {
		if res.Series.Sent[i] != 1000 || res.Series.Failed[i] != 0 {
			t.Errorf("second %d: sent %d failed %d", i, res.Series.Sent[i], res.Series.Failed[i])
		}
	}
	if res.Series.Acked[5] != 1000 || res.Series.Consumed[0] != 0 || res.Series.Consumed[5] != 1000 {
		t.Errorf("acked[5]=%d consumed[0]=%d consumed[5]=%d", res.Series.Acked[5], res.Series.Consumed[0], res.Series.Consumed[5])
	}
	near(t, "backlog[5]", float64(res.Series.Backlog[5]), 1500, 2)
	if last := res.Series.Backlog[len(res.Series.Backlog)-1]; last != 0 {
		t.Errorf("backlog after drain %d, want 0", last)
	}
}

// A 2 s stall at a fixed rate: a closed-loop client would measure 1 ms for
// every message; measured from the intended send time the stall shows in
// the tail, as DESIGN.md's measurement rules require.
func TestCoordinatedOmission(t *testing.T) {
	stallFrom, stallTo := 10*time.Second, 12*time.Second
	run := Synthetic{Rate: 1000, Duration: 20 * time.Second, Warmup: 2 * time.Second, Partitions: 3,
		AckLatency: time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			if off := s.Intended.Sub(SyntheticStart); off >= stallFrom && off < stallTo {
				s.Sent = SyntheticAt(stallTo) // the client was blocked until the stall ended
				s.Done = s.Sent.Add(time.Millisecond)
			}
			return true
		}}.Run()
	var naive time.Duration
	for _, s := range run.Sends {
		naive = max(naive, s.Done.Sub(s.Sent))
	}
	if naive > 2*time.Millisecond {
		t.Fatalf("test setup: closed-loop latency %v should stay tiny", naive)
	}
	res := Analyze(run, DefaultAnalysisConfig())
	if p := res.Summary.PublishP999Ms; p < 1950 {
		t.Errorf("publish p99.9 = %v ms, want ≥ ~2000 ms (coordinated omission?)", p)
	}
	if m := res.Summary.PublishMaxMs; m < 2000 || m > 2010 {
		t.Errorf("publish max = %v ms, want ~2001", m)
	}
	if p := res.Summary.PublishP50Ms; p > 2 {
		t.Errorf("publish p50 = %v ms, the stall should only move the tail", p)
	}
	if d := res.Latency.SendDelay.MaxMs; d < 1990 {
		t.Errorf("send delay max = %v ms, want ~2000", d)
	}
	if e := res.Summary.E2EP999Ms; e < 1950 {
		t.Errorf("e2e p99.9 = %v ms, want ≥ ~2000", e)
	}
}

func TestCheckerKnownAnswers(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 10 * time.Second, Warmup: time.Second, Partitions: 2,
		AckLatency: time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			switch s.Seq {
			case 10: // acked, never received: lost
				return false
			case 20: // failed, but the broker had written it: indeterminate
				s.Outcome, s.Err = history.Failed, "request timed out"
			case 30: // no answer before the end: unknown
				s.Outcome = history.Unknown
				return false
			}
			return true
		}}.Run()
	// seq 20 was failed, so synth recorded no receive; it arrives anyway.
	run.Receives = append(run.Receives, history.Receive{Producer: 1, Seq: 20, Partition: 0, Offset: 900, Intended: SyntheticAt(200 * time.Millisecond), Received: SyntheticAt(9 * time.Second)})
	// seq 40 is written twice (a retry after a lost ack): a duplicate.
	dup := findRecv(t, run.Receives, 40)
	dup.Offset = 901
	run.Receives = append(run.Receives, dup)
	// seq 42 is read twice at the same offset (two consumers): no duplicate.
	run.Receives = append(run.Receives, findRecv(t, run.Receives, 42))
	// seq 50 and 52 (both partition 0) swapped places in the log: one reorder.
	i50, i52 := recvIndex(t, run.Receives, 50), recvIndex(t, run.Receives, 52)
	run.Receives[i50].Offset, run.Receives[i52].Offset = run.Receives[i52].Offset, run.Receives[i50].Offset
	// A message no producer sent.
	run.Receives = append(run.Receives, history.Receive{Producer: 7, Seq: 3, Partition: 1, Offset: 950, Received: SyntheticAt(time.Second)})

	c := Check(run.Sends, run.Receives, 10)
	want := CheckResult{Sent: 1000, Acked: 998, Failed: 1, Unknown: 1, Lost: 1, Duplicated: 1, Reordered: 1, Indeterminate: 1, Unexpected: 1}
	got := CheckResult{Sent: c.Sent, Acked: c.Acked, Failed: c.Failed, Unknown: c.Unknown, Lost: c.Lost,
		Duplicated: c.Duplicated, Reordered: c.Reordered, Indeterminate: c.Indeterminate, Unexpected: c.Unexpected}
	if !equalCheck(got, want) {
		t.Errorf("checker counts\n got %+v\nwant %+v", got, want)
	}
	if len(c.LostSamples) != 1 || c.LostSamples[0].Seq != 10 || c.LostSamples[0].AckedOffset != 5 {
		t.Errorf("lost samples %+v", c.LostSamples)
	}
	if len(c.DuplicatedSamples) != 1 || c.DuplicatedSamples[0].Seq != 40 || len(c.DuplicatedSamples[0].Offsets) != 2 {
		t.Errorf("duplicated samples %+v", c.DuplicatedSamples)
	}
	if len(c.ReorderedSamples) != 1 || c.ReorderedSamples[0].Seq != 50 {
		t.Errorf("reordered samples %+v", c.ReorderedSamples)
	}
	if len(c.IndeterminateSamples) != 1 || c.IndeterminateSamples[0].Seq != 20 || c.IndeterminateSamples[0].Outcome != "failed" {
		t.Errorf("indeterminate samples %+v", c.IndeterminateSamples)
	}
	if len(c.UnexpectedSamples) != 1 || c.UnexpectedSamples[0].Producer != 7 {
		t.Errorf("unexpected samples %+v", c.UnexpectedSamples)
	}
	// The summary carries the same verdict.
	s := Analyze(run, DefaultAnalysisConfig()).Summary
	if s.Lost != 1 || s.Duplicated != 1 || s.Reordered != 1 || s.Indeterminate != 1 || s.Failed != 2 {
		t.Errorf("summary %+v", s)
	}
}

func TestCheckerSampleLimit(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 5 * time.Second, Warmup: time.Second, Partitions: 1,
		Edit: func(s *history.Send) bool { return s.Seq%2 == 0 }}.Run()
	c := Check(run.Sends, run.Receives, 3)
	if c.Lost != 250 || len(c.LostSamples) != 3 || c.LostSamples[0].Seq != 1 || c.LostSamples[2].Seq != 5 {
		t.Errorf("lost %d samples %+v", c.Lost, c.LostSamples)
	}
}

func equalCheck(a, b CheckResult) bool {
	return a.Sent == b.Sent && a.Acked == b.Acked && a.Failed == b.Failed && a.Unknown == b.Unknown && a.Lost == b.Lost &&
		a.Duplicated == b.Duplicated && a.Reordered == b.Reordered && a.Indeterminate == b.Indeterminate && a.Unexpected == b.Unexpected
}

func recvIndex(t *testing.T, rs []history.Receive, seq int64) int {
	t.Helper()
	for i, r := range rs {
		if r.Seq == seq {
			return i
		}
	}
	t.Fatalf("no receive of seq %d", seq)
	return -1
}

func findRecv(t *testing.T, rs []history.Receive, seq int64) history.Receive {
	t.Helper()
	return rs[recvIndex(t, rs, seq)]
}

// Partition 0 rejects writes from 10 s until 12.5 s; the others never notice.
func TestUnavailabilityKnownWindow(t *testing.T) {
	failFrom, failTo := 10*time.Second, 12500*time.Millisecond
	run := Synthetic{Rate: 300, Duration: 30 * time.Second, Warmup: 2 * time.Second, Partitions: 3,
		AckLatency: time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			if off := s.Intended.Sub(SyntheticStart); s.Partition == 0 && off >= failFrom && off < failTo {
				s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
				s.Done = s.Intended.Add(100 * time.Millisecond)
			}
			return true
		}}.Run()
	run.Faults = []FaultEvent{
		{At: SyntheticAt(10 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 1",
			Detected: SyntheticAt(12 * time.Second), Converged: SyntheticAt(12600 * time.Millisecond)},
		{At: SyntheticAt(20 * time.Second), Action: scenario.ActionRestart, Target: "killed", Node: "broker 1"},
	}
	res := Analyze(run, DefaultAnalysisConfig())
	if len(res.Faults) != 2 {
		t.Fatalf("faults %+v", res.Faults)
	}
	kill := res.Faults[0]
	// First failed send intended at 10.000 s; first ack on partition 0 after
	// it is the send intended at 12.5 s, acked 1 ms later.
	near(t, "kill unavailability", kill.UnavailableS, 2.501, 0.005)
	if len(kill.Partitions) != 1 || kill.Partitions[0].Partition != 0 || !kill.Recovered {
		t.Errorf("partitions %+v", kill.Partitions)
	}
	near(t, "failed sends in gap", float64(kill.Partitions[0].Failed), 250, 1)
	near(t, "detection", *kill.DetectionS, 2, 1e-9)
	near(t, "convergence", *kill.ConvergenceS, 2.6, 1e-9)
	if res.Faults[1].UnavailableS != 0 || res.Faults[1].DetectionS != nil {
		t.Errorf("restart caused no gap: %+v", res.Faults[1])
	}
	s := res.Summary
	near(t, "max unavailability", s.MaxUnavailabilityS, 2.501, 0.005)
	near(t, "summary detection", *s.DetectionS, 2, 1e-9)
	if s.Failed != 250 || s.Lost != 0 { // 2.5 s × 300/s on one of 3 partitions
		t.Errorf("failed %d lost %d", s.Failed, s.Lost)
	}
}

// A client that retries hides the failures; the retried sends still mark
// the gap, and the topic's gap spans partitions that failed at different
// times.
func TestUnavailabilityRetriesAndSpan(t *testing.T) {
	run := Synthetic{Rate: 200, Duration: 20 * time.Second, Warmup: time.Second, Partitions: 2,
		AckLatency: time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			off := s.Intended.Sub(SyntheticStart)
			switch {
			case s.Partition == 0 && off >= 5*time.Second && off < 6*time.Second:
				s.Attempts = 3 // acked only after the partition came back at 6 s
				s.Done = SyntheticAt(6*time.Second + time.Millisecond)
			case s.Partition == 1 && off >= 5500*time.Millisecond && off < 7*time.Second:
				s.Outcome = history.Failed
			}
			return true
		}}.Run()
	run.Faults = []FaultEvent{{At: SyntheticAt(5 * time.Second), Action: scenario.ActionPause, Target: "broker 0"}}
	res := Analyze(run, DefaultAnalysisConfig())
	f := res.Faults[0]
	if len(f.Partitions) != 2 {
		t.Fatalf("partitions %+v", f.Partitions)
	}
	near(t, "p0 gap", f.Partitions[0].UnavailableS, 1.001, 0.002)
	near(t, "p1 gap", f.Partitions[1].UnavailableS, 1.501, 0.01)
	near(t, "p1 start", f.Partitions[1].StartS, 5.5, 0.01)
	near(t, "topic span", f.UnavailableS, 2.001, 0.01)
}

// Acks of requests sent before the fault are no recovery: a send intended
// just after the first bad one may have been acked before the fault, or be
// answered just after it by a broker that had taken it (JetStream). The gap
// runs from the fault to the first ack of a request sent after it (found by
// quickstart runs that reported 0.00 s for outages of 2 and 6 s).
func TestUnavailabilityIgnoresAcksOfEarlierRequests(t *testing.T) {
	run := Synthetic{Rate: 1000, Duration: 20 * time.Second, Warmup: time.Second, Partitions: 1,
		AckLatency: time.Millisecond,
		Edit: func(s *history.Send) bool {
			off := s.Intended.Sub(SyntheticStart)
			switch {
			case off >= 9995*time.Millisecond && off < 9996*time.Millisecond:
				s.Attempts = 2 // in flight at the kill, acked after a retry
				s.Sent = SyntheticAt(12 * time.Second)
				s.Done = SyntheticAt(12*time.Second + time.Millisecond)
			case off >= 9996*time.Millisecond && off < 9997*time.Millisecond:
				s.Done = SyntheticAt(10*time.Second + 300*time.Microsecond) // answered just after the kill
			case off >= 10*time.Second && off < 12*time.Second:
				s.Outcome = history.Failed
				s.Done = s.Intended.Add(100 * time.Millisecond)
			}
			return true
		}}.Run()
	run.Faults = []FaultEvent{{At: SyntheticAt(10 * time.Second), Action: scenario.ActionKill, Target: "broker 0"}}
	f := Analyze(run, DefaultAnalysisConfig()).Faults[0]
	if len(f.Partitions) != 1 {
		t.Fatalf("partitions %+v", f.Partitions)
	}
	near(t, "gap start", f.Partitions[0].StartS, 10, 0.001)
	near(t, "gap", f.UnavailableS, 2.001, 0.002)
}

func TestUnavailabilityNeverRecovered(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 10 * time.Second, Warmup: time.Second, Partitions: 1,
		AckLatency: time.Millisecond,
		Edit: func(s *history.Send) bool {
			if s.Intended.Sub(SyntheticStart) >= 6*time.Second {
				s.Outcome = history.Failed
			}
			return true
		}}.Run()
	run.DrainEnd = SyntheticAt(15 * time.Second)
	run.Faults = []FaultEvent{{At: SyntheticAt(6 * time.Second), Action: scenario.ActionKill, Target: "broker 0"}}
	f := Analyze(run, DefaultAnalysisConfig()).Faults[0]
	if f.Recovered || f.Partitions[0].Recovered {
		t.Errorf("recovered: %+v", f)
	}
	near(t, "gap to end of run", f.UnavailableS, 9, 0.01)
}

func TestUnknownWithoutAnswerIsNotUnavailability(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 10 * time.Second, Warmup: time.Second, Partitions: 1,
		AckLatency: time.Millisecond,
		Edit: func(s *history.Send) bool {
			if s.Intended.Sub(SyntheticStart) >= 9900*time.Millisecond {
				s.Outcome, s.Done = history.Unknown, time.Time{} // cut off by the end of the run
			}
			return true
		}}.Run()
	run.Faults = []FaultEvent{{At: SyntheticAt(9 * time.Second), Action: scenario.ActionKill, Target: "broker 0"}}
	if f := Analyze(run, DefaultAnalysisConfig()).Faults[0]; f.UnavailableS != 0 || len(f.Partitions) != 0 {
		t.Errorf("sends cut off by the end of the run made a gap: %+v", f)
	}
}

func TestControlPlaneCost(t *testing.T) {
	run := Synthetic{Rate: 10, Duration: 20 * time.Second, Warmup: 5 * time.Second, Partitions: 1}.Run()
	for i := range 21 {
		ts := SyntheticAt(time.Duration(i) * time.Second)
		run.ControlPlane = append(run.ControlPlane, CPSample{At: ts, Kind: "etcd/put", Requests: int64(10 * i), Bytes: int64(1000 * i)})
		// A name server restarted at 12 s: its counter starts over.
		n := int64(5 * i)
		if i >= 12 {
			n = int64(5 * (i - 12))
		}
		run.ControlPlane = append(run.ControlPlane, CPSample{At: ts, Kind: "nameserver/register", Requests: n, Bytes: 10 * n})
	}
	res := Analyze(run, DefaultAnalysisConfig())
	cp := res.ControlPlane
	if len(cp.ByKind) != 2 || cp.ByKind[0].Kind != "etcd/put" {
		t.Fatalf("by kind %+v", cp.ByKind)
	}
	near(t, "etcd requests/s", cp.ByKind[0].RequestsPerS, 10, 1e-9)
	near(t, "etcd bytes/s", cp.ByKind[0].BytesPerS, 1000, 1e-9)
	// Window 5 s to 20 s: 5 per second except the second of the restart,
	// whose requests before the crash were never sampled: 70 in 15 s.
	near(t, "nameserver requests/s", cp.ByKind[1].RequestsPerS, 70.0/15, 1e-9)
	near(t, "total requests/s", res.Summary.CPRequestsPerS, 10+70.0/15, 1e-9)
	near(t, "total bytes/s", res.Summary.CPBytesPerS, 1000+700.0/15, 1e-9)
	if cp.Requests != 200+95 { // 11 s × 5 before the restart, 8 s × 5 after
		t.Errorf("total requests %d, want 295", cp.Requests)
	}
	if res.Series.CPRequests[3] != 15 {
		t.Errorf("cp series %v", res.Series.CPRequests)
	}
}

func TestAnalyzeEmptyRun(t *testing.T) {
	res := Analyze(Run{Topology: "nameserver"}, AnalysisConfig{}) // invalid config falls back
	if res.Summary.Acked != 0 || res.Summary.PublishRate != 0 || len(res.Series.Sent) != 0 || res.Latency.Publish.HDR != "" {
		t.Errorf("empty run: %+v", res)
	}
	if _, err := res.Latency.Publish.Histogram(); err == nil {
		t.Error("empty histogram decoded")
	}
}

func TestAnalysisConfigValidate(t *testing.T) {
	if err := DefaultAnalysisConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []AnalysisConfig{{Samples: -1, HistogramMax: time.Hour, SignificantFigures: 3},
		{HistogramMax: time.Microsecond, SignificantFigures: 3}, {HistogramMax: time.Hour, SignificantFigures: 6}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}

func TestHistogramSurvivesEncoding(t *testing.T) {
	run := Synthetic{Rate: 500, Duration: 10 * time.Second, Warmup: time.Second, Partitions: 2,
		AckLatency: 7 * time.Millisecond}.Run()
	l := Analyze(run, DefaultAnalysisConfig()).Latency.Publish
	h, err := l.Histogram()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != l.Count || UsToMs(h.ValueAtQuantile(99)) != l.P99Ms {
		t.Errorf("decoded histogram: count %d p99 %v, stats %+v", h.TotalCount(), UsToMs(h.ValueAtQuantile(99)), l)
	}
}

// The issue-19 run: live consumers received every acked message, then the
// verification read found a restarted leader whose high watermark was still
// 0 in partition 0. Its acked messages are unreadable, for the time the read
// tried, not lost; the consume rate and the consumed count are the live
// consumers'. Partition 1 was read to its end, so its one missing message
// is lost; partition 2 was read part way, so only what lies past the point
// reached is unreadable.
func TestVerificationUnreadablePartitionIsNotLoss(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 10 * time.Second, Partitions: 3, AckLatency: 5 * time.Millisecond}.Run()
	run.FinalStart, run.FinalEnd = SyntheticAt(20*time.Second), SyntheticAt(50*time.Second)
	var ends [3]int64
	for _, s := range run.Sends {
		ends[s.Partition] = max(ends[s.Partition], s.Offset+1)
	}
	var missingP1 history.Send
	run.Final = []history.Receive{}
	for _, r := range run.Receives {
		switch {
		case r.Partition == 0:
		case r.Partition == 1 && r.Offset == 7:
			missingP1 = history.Send{Seq: r.Seq}
		case r.Partition == 2 && r.Offset >= 100:
		default:
			run.Final = append(run.Final, r)
		}
	}
	run.FinalReads = []PartitionRead{
		{Partition: 0, Position: 0, HighWatermark: 0},
		{Partition: 1, Position: ends[1], HighWatermark: ends[1]},
		{Partition: 2, Position: 100, HighWatermark: 300, LastErr: "connection refused"},
	}
	res := Analyze(run, DefaultAnalysisConfig())
	c := res.Check
	if c.Lost != 1 || len(c.LostSamples) != 1 || c.LostSamples[0].Seq != missingP1.Seq {
		t.Fatalf("lost %d %+v, want only seq %d of partition 1", c.Lost, c.LostSamples, missingP1.Seq)
	}
	if want := ends[0] + ends[2] - 100; c.Unreadable != want || res.Summary.Unreadable != want {
		t.Fatalf("unreadable %d (summary %d), want %d", c.Unreadable, res.Summary.Unreadable, want)
	}
	if len(c.UnreadablePartitions) != 2 {
		t.Fatalf("unreadable partitions %+v, want 0 and 2", c.UnreadablePartitions)
	}
	u0, u2 := c.UnreadablePartitions[0], c.UnreadablePartitions[1]
	if u0.Partition != 0 || u0.ReadTo != 0 || u0.HighWatermark != 0 || u0.AckedEnd != ends[0] || u0.ForS != 30 || u0.Reason == "" {
		t.Fatalf("partition 0: %+v", u0)
	}
	if u2.Partition != 2 || u2.ReadTo != 100 || !strings.Contains(u2.Reason, "connection refused") {
		t.Fatalf("partition 2: %+v", u2)
	}
	if res.Summary.Consumed != int64(len(run.Receives)) {
		t.Fatalf("consumed %d, want the live consumers' %d", res.Summary.Consumed, len(run.Receives))
	}
	near(t, "consume rate", res.Summary.ConsumeRate, 100, 1)
}

// Nothing received live: the consume rate is 0 whatever the publish rate.
func TestConsumeRateCountsReceivesOnly(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 10 * time.Second, Partitions: 2, AckLatency: 5 * time.Millisecond,
		Edit: func(*history.Send) bool { return false }}.Run()
	res := Analyze(run, DefaultAnalysisConfig())
	if res.Summary.PublishRate == 0 || res.Summary.ConsumeRate != 0 || res.Summary.Consumed != 0 {
		t.Fatalf("publish %v/s, consume %v/s, consumed %d: want consumption 0", res.Summary.PublishRate, res.Summary.ConsumeRate, res.Summary.Consumed)
	}
}

// A log that ends before acknowledged offsets (an async master's slave,
// an unclean election) was read to its end: what it lacks is lost, not
// unreadable.
func TestVerificationLogEndedIsLoss(t *testing.T) {
	run := Synthetic{Rate: 100, Duration: 2 * time.Second, Partitions: 1, AckLatency: 5 * time.Millisecond}.Run()
	run.FinalStart, run.FinalEnd = SyntheticAt(5*time.Second), SyntheticAt(6*time.Second)
	run.Final = []history.Receive{}
	for _, r := range run.Receives {
		if r.Offset < 150 {
			run.Final = append(run.Final, r)
		}
	}
	run.FinalReads = []PartitionRead{{Partition: 0, Position: 150, HighWatermark: 150, LogEnded: true}}
	c := Analyze(run, DefaultAnalysisConfig()).Check
	if c.Lost != 50 || c.Unreadable != 0 || len(c.UnreadablePartitions) != 0 {
		t.Fatalf("lost %d, unreadable %d %+v: want the 50 past the log end lost", c.Lost, c.Unreadable, c.UnreadablePartitions)
	}
}
