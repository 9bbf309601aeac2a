package analysis

import (
	"time"

	"github.com/brokerlab/brokerlab/history"
)

// SyntheticStart is the start of every Synthetic run: a fixed instant, so
// that runs built from the same settings are identical.
var SyntheticStart = time.Unix(1_800_000_000, 0)

// SyntheticAt is the instant d after SyntheticStart.
func SyntheticAt(d time.Duration) time.Time { return SyntheticStart.Add(d) }

// Synthetic describes a made-up run with known answers, for tests of the
// analysis and the reports and for sample reports: one producer at a fixed
// rate, messages round-robin over partitions, each acked after AckLatency
// and received RecvDelay after its ack, at consecutive offsets per
// partition. Edit may change each send before it is recorded.
type Synthetic struct {
	Rate       float64 // msgs/s
	Duration   time.Duration
	Warmup     time.Duration
	Partitions int32
	AckLatency time.Duration
	RecvDelay  time.Duration
	// Edit may change a send (outcome, times); returning false drops its
	// receive.
	Edit func(s *history.Send) (received bool)
}

// Run builds the run.
func (c Synthetic) Run() Run {
	r := Run{
		Topology: "coordinator", TargetRate: c.Rate,
		Start: SyntheticStart, WarmupEnd: SyntheticAt(c.Warmup), End: SyntheticAt(c.Duration),
		Partitions: int(c.Partitions),
	}
	next := make([]int64, c.Partitions)
	n := int64(c.Rate * c.Duration.Seconds())
	for i := range n {
		intended := SyntheticAt(time.Duration(float64(i) / c.Rate * float64(time.Second)))
		s := history.Send{
			Producer: 1, Seq: i, Partition: int32(i % int64(c.Partitions)),
			Intended: intended, Sent: intended, Done: intended.Add(c.AckLatency),
			Outcome: history.Acked, Attempts: 1,
		}
		received := true
		if c.Edit != nil {
			received = c.Edit(&s)
		}
		if s.Outcome == history.Acked {
			s.Offset = next[s.Partition]
			next[s.Partition]++
		} else {
			s.Offset = -1
		}
		r.Sends = append(r.Sends, s)
		if received && s.Outcome == history.Acked {
			r.Receives = append(r.Receives, history.Receive{
				Producer: s.Producer, Seq: s.Seq, Partition: s.Partition, Offset: s.Offset,
				Intended: s.Intended, Received: s.Done.Add(c.RecvDelay),
			})
		}
	}
	r.DrainEnd = r.End.Add(c.AckLatency + c.RecvDelay + time.Second)
	return r
}
