package scale

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkStandInVsDataPlane runs the same small cluster (9 brokers, 90
// partitions × 3 replicas, fast timings) twice per topology: with the
// stand-in data plane, and with real brokers (Kafka listener, log on disk,
// replication) over the same control plane, timing both on the views the
// control plane hands each broker. Propagation (a new topic to every
// broker's view) and detection (the killed broker gone from the first
// view) should agree: the stand-in must not flatter the control plane.
//
//	go test -run '^$' -bench StandInVsDataPlane -benchtime 1x ./scale/
func BenchmarkStandInVsDataPlane(b *testing.B) {
	for _, topo := range []string{"coordinator", "nameserver"} {
		for _, full := range []bool{false, true} {
			mode := "stand-in"
			if full {
				mode = "data-plane"
			}
			b.Run(fmt.Sprintf("%s/%s", topo, mode), func(b *testing.B) {
				var prop, propMax, detect, reelect float64
				for range b.N {
					pt, err := Run(context.Background(), Config{Topology: topo,
						Shape: Shape{Brokers: 9, Partitions: 90, Replication: 3, Profile: "fast", Dir: b.TempDir()},
						Idle:  2 * time.Second, Settle: 2 * time.Minute, DataPlane: full})
					if err != nil {
						b.Fatal(err)
					}
					if pt.Error != "" {
						b.Fatal(pt.Error)
					}
					prop += pt.Propagation.P50
					propMax += pt.Propagation.Max
					detect += pt.DetectionS
					reelect += pt.ReElection.P50
				}
				n := float64(b.N)
				b.ReportMetric(1000*prop/n, "prop-p50-ms")
				b.ReportMetric(1000*propMax/n, "prop-max-ms")
				b.ReportMetric(1000*detect/n, "detect-ms")
				b.ReportMetric(1000*reelect/n, "reelect-p50-ms")
			})
		}
	}
}
