package gossip_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/gossip"
)

// TestKcatThroughAnyBroker: kcat (librdkafka, a client that is neither of
// the Go libraries the project uses) produces through every broker of a
// gossip cluster, under both placements, with acks=all, and consumes
// everything back through every broker: any broker answers Metadata from
// its gossip view and sends the client on to the partitions' leaders. CI
// installs kcat from Debian's package; where it is missing the test skips
// and says so.
func TestKcatThroughAnyBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (Debian package kcat; .ci/run installs it): the librdkafka client check is skipped")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			c := newCluster(t, 3, placement)
			c.waitMasters(3)
			const topic, parts, perBroker = "kcat", 6, 50
			c.CreateTopic(t, broker.TopicConfig{Name: topic, Partitions: parts, ReplicationFactor: 2, MinInsync: 2})
			for p := range int32(parts) {
				c.WaitLeader(topic, p)
			}
			var want []string
			for _, id := range c.IDs() {
				var in bytes.Buffer
				for i := range perBroker {
					v := fmt.Sprintf("b%d-%03d", id, i)
					want = append(want, v)
					// Keyed, so the messages spread over the partitions.
					fmt.Fprintf(&in, "%s:%s\n", strconv.Itoa(i), v)
				}
				out, err := runKcat(t, kcat, &in, "-P", "-b", c.Broker(id).Addr(), "-t", topic, "-K", ":",
					"-X", "acks=all", "-X", "message.timeout.ms=20000")
				if err != nil {
					t.Fatalf("kcat produce through broker %d: %v\n%s", id, err, out)
				}
			}
			slices.Sort(want)
			for _, id := range c.IDs() {
				out, err := runKcat(t, kcat, nil, "-C", "-b", c.Broker(id).Addr(), "-t", topic,
					"-o", "beginning", "-e", "-q", "-f", "%p %s\n")
				if err != nil {
					t.Fatalf("kcat consume through broker %d: %v\n%s", id, err, out)
				}
				var got []string
				seen := map[string]bool{}
				for line := range strings.Lines(string(out)) {
					p, v, ok := strings.Cut(strings.TrimSpace(line), " ")
					if !ok {
						continue
					}
					got = append(got, v)
					seen[p] = true
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("kcat through broker %d read %d messages, want the %d produced (first got %q)", id, len(got), len(want), got[:min(3, len(got))])
				}
				if len(seen) < 2 {
					t.Errorf("all %d messages came from %d partition(s): the keys did not spread", len(got), len(seen))
				}
			}
			t.Logf("%s: kcat produced %d messages through each of 3 brokers (acks=all) and read all %d back through each", placement, perBroker, len(want))
		})
	}
}

// runKcat runs kcat with a bound, returning its combined output.
func runKcat(t *testing.T, kcat string, stdin *bytes.Buffer, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return append(out.Bytes(), errOut.Bytes()...), err
	}
	return out.Bytes(), nil
}
