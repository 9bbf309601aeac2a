package faultnet

import (
	"fmt"
	"testing"
	"time"
)

func TestLossPenalty(t *testing.T) {
	if got := lossPenalty(0, 1000); got != 0 {
		t.Errorf("no loss: %v", got)
	}
	if got, want := lossPenalty(1, 1), 63*minRTO; got != want { // 1+2+4+8+16+32 RTOs, then the retransmit cap
		t.Errorf("total loss: %v, want %v", got, want)
	}
	// At 10 % loss a one-packet chunk is retransmitted with probability 0.1:
	// mean wait 200 ms × (0.1 + 2×0.01 + 4×0.001 + ...) ≈ 24.9 ms.
	const n = 20000
	var sum time.Duration
	for range n {
		sum += lossPenalty(0.1, 100)
	}
	if mean := sum / n; mean < 20*time.Millisecond || mean > 30*time.Millisecond {
		t.Errorf("mean wait at 10%% loss %v, want about 25 ms", mean)
	}
	// A larger chunk spans more packets, so it is hit more often.
	var big time.Duration
	for range n {
		big += lossPenalty(0.1, 10*segmentBytes)
	}
	if big <= 3*sum {
		t.Errorf("10-packet chunks waited %v in all, 1-packet ones %v: more packets must lose more", big, sum)
	}
}

// TestLossDelaysButKeepsData: a lossy link delivers every byte in order,
// later than a clean one, and Heal removes the loss.
func TestLossDelaysButKeepsData(t *testing.T) {
	n := newNet(t)
	srv := startServer(t, true)
	n.Register("b", srv.addr())
	c := dial(t, n, "a", srv.addr())
	n.Loss("a", "b", 0.2)
	start := time.Now()
	var slowest time.Duration
	for i := range 30 { // P(no retransmission in 60 transmissions) = 0.8^60 ≈ 1.5e-6
		msg := fmt.Appendf(nil, "m%03d", i)
		slowest = max(slowest, roundTrip(t, c, msg))
	}
	if took := time.Since(start); took < minRTO {
		t.Fatalf("30 round trips at 20%% loss took %v: no retransmission was simulated", took)
	}
	if slowest < minRTO {
		t.Fatalf("slowest round trip %v, want at least one RTO", slowest)
	}
	n.Loss("a", "b", 0)
	pipeline(t, c, "n", 50)
}
