package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkRequestMetrics is what the metrics add to one Produce request of
// eight partitions on the request path: the per-API count, two clock reads,
// a histogram observation and the error-code walk.
//
//	go test -run '^$' -bench RequestMetrics ./broker/
func BenchmarkRequestMetrics(b *testing.B) {
	var reqs requestCounters
	lat := newLatencies()
	req := kmsg.NewPtrProduceRequest()
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	t := kmsg.NewProduceResponseTopic()
	t.Partitions = make([]kmsg.ProduceResponseTopicPartition, 8)
	resp.Topics = append(resp.Topics, t)
	b.ReportAllocs()
	for b.Loop() {
		reqs.countRequest(0)
		start := time.Now()
		lat.observe(req, time.Since(start))
		reqs.countErrors(0, resp)
	}
}

func TestErrorCounting(t *testing.T) {
	var reqs requestCounters
	resp := kmsg.NewPtrProduceResponse()
	tp := kmsg.NewProduceResponseTopic()
	tp.Partitions = make([]kmsg.ProduceResponseTopicPartition, 3)
	tp.Partitions[1].ErrorCode = kerr.NotLeaderForPartition.Code
	tp.Partitions[2].ErrorCode = -1
	resp.Topics = append(resp.Topics, tp)
	reqs.countErrors(0, resp)
	if n := reqs.errors[0][kerr.NotLeaderForPartition.Code].Load(); n != 1 {
		t.Errorf("NOT_LEADER counted %d times, want 1", n)
	}
	if n := reqs.errors[0][0].Load(); n != 1 {
		t.Errorf("out-of-range code counted %d times under OTHER, want 1", n)
	}
	if got := errorName(kerr.NotLeaderForPartition.Code); got != "NOT_LEADER_FOR_PARTITION" {
		t.Errorf("error name %q", got)
	}
	reqs.countRequest(-3) // bad keys are ignored, never a panic
	reqs.countRequest(kmsg.MaxKey + 1)
	reqs.countError(kmsg.MaxKey+1, 5)
}
