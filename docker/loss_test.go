package docker

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestLinkLossDocker: 20 % loss on the link between two brokers' sandboxes
// drops about a fifth of the packets they send each other (read from the
// rules' own counters, over real replication traffic under acks=all), loses
// nothing acknowledged, and heal removes it.
func TestLinkLossDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("docker: about 30 s; skipped with -short")
	}
	spec := testSpec(t, "coordinator")
	spec.Cluster.Nodes["etcd"] = 1
	dep, b := deploy(t, spec)
	ctrs := b.l.(*containers)
	if ctrs.nsenter == nil {
		t.Skip("docker: loss needs root, nsenter and iptables on the engine's host")
	}
	n0, n1 := b.nodes["broker 0"], b.nodes["broker 1"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	link, err := scenario.ParseTarget("broker 0 - broker 1")
	if err != nil {
		t.Fatal(err)
	}
	step := scenario.Step{Revert: -1, Fault: scenario.Fault{Action: scenario.ActionLoss, Target: link, Percent: 20}}
	if _, err := dep.Apply(ctx, step, ""); err != nil {
		t.Fatalf("loss: %v", err)
	}
	out := runLoad(t, dep, spec, 300, 6*time.Second, nil)
	out.mustBeSafe(t)
	counts := func() (int64, int64, error) {
		b.mu.Lock()
		ip0, ip1 := n0.ip, n1.ip
		b.mu.Unlock()
		return ctrs.lossCounts(ctx, n0, n1, ip0, ip1)
	}
	sent, dropped, err := counts()
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(dropped) / float64(max(sent, 1))
	t.Logf("broker 0 - broker 1: %d of %d packets dropped (%.1f %%)", dropped, sent, 100*rate)
	// Each packet is dropped with probability 0.2 on its own: the dropped
	// count is binomial, within 4 standard deviations of a fifth.
	if bound := 4 * math.Sqrt(0.2*0.8/float64(max(sent, 1))); sent < 100 || math.Abs(rate-0.2) > bound {
		t.Errorf("%d of %d packets dropped (%.1f %%), want at least 100 packets and 20 ± %.1f %%", dropped, sent, 100*rate, 100*bound)
	}
	heal := scenario.Step{Revert: -1, Fault: scenario.Fault{Action: scenario.ActionHeal, Target: link}}
	if _, err := dep.Apply(ctx, heal, ""); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if _, _, err := counts(); err == nil || !strings.Contains(err.Error(), "no loss rules") {
		t.Errorf("after heal: %v, want the rules gone", err)
	}
}

func TestParseLossCounters(t *testing.T) {
	out := []byte(`-P OUTPUT ACCEPT -c 9 900
-A OUTPUT -d 172.29.4.3/32 -c 5 500 -j DROP
-A OUTPUT -d 172.29.4.3/32 -c 120 9000
-A OUTPUT -d 172.29.4.3/32 -m statistic --mode random --probability 0.20000000019 -c 25 1800 -j DROP
-A OUTPUT -d 172.29.4.30/32 -c 7 700
`)
	sent, dropped, ok := parseLossCounters(out, "172.29.4.3")
	if !ok || sent != 120 || dropped != 25 {
		t.Fatalf("sent %d dropped %d found %v, want 120, 25, true", sent, dropped, ok)
	}
	if _, _, ok := parseLossCounters(out, "172.29.4.30"); ok {
		t.Error("a counting rule without its drop rule counts as found")
	}
}
