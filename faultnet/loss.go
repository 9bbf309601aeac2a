package faultnet

import (
	"math"
	"math/rand/v2"
	"time"
)

// TCP's view of packet loss, for Network.Loss.
const (
	segmentBytes   = 1448                   // payload of one packet (1500 MTU, TCP timestamps)
	minRTO         = 200 * time.Millisecond // Linux's TCP_RTO_MIN
	maxRetransmits = 6                      // beyond this a real connection would be near its end
)

// lossPenalty is how long a chunk of n bytes waits for retransmissions on a
// link that loses a fraction p of packets: each transmission of the chunk
// loses at least one of its packets with probability 1-(1-p)^packets, and
// each such loss costs an RTO, doubled per consecutive retransmission.
func lossPenalty(p float64, n int) time.Duration {
	if p <= 0 || n <= 0 {
		return 0
	}
	packets := (n + segmentBytes - 1) / segmentBytes
	hit := 1 - math.Pow(1-p, float64(packets))
	var wait time.Duration
	for k := 0; k < maxRetransmits && rand.Float64() < hit; k++ {
		wait += minRTO << k
	}
	return wait
}
