package docker

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	_ "github.com/brokerlab/brokerlab/scenarios/jetstream" // quickstart lists it: reported as having no docker driver
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	dc "github.com/ory/dockertest/v3/docker"
)

// TestQuickstart runs scenarios/quickstart.yaml through the scenario runner
// with the docker runtime, as `brokerlab run --runtime docker` does. The
// topologies without a docker driver (jetstream) are reported as such.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("docker: quickstart takes about a minute; skipped with -short")
	}
	pool := needEngine(t)
	testImage(t, pool)
	spec, err := scenario.Load(filepath.Join("..", "scenarios", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	began := time.Now()
	res, err := scenarios.RunScenario(ctx, spec, scenarios.RunOptions{Out: out, Runtime: scenario.RuntimeDocker, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quickstart under docker took %v", time.Since(began).Round(time.Millisecond))
	for _, f := range []string{report.ResultFile, report.ReportMarkdownFile, report.ReportHTMLFile} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	ran := map[string]bool{}
	for _, tr := range res.Topologies {
		switch tr.Topology {
		case "coordinator", "nameserver", "nameserver-controller":
			ran[tr.Topology] = true
			if tr.Error != "" {
				t.Errorf("%s: %s", tr.Topology, tr.Error)
				continue
			}
			s := tr.Summary
			if s.Acked == 0 || s.Lost != 0 {
				t.Errorf("%s: %d acked, %d lost", tr.Topology, s.Acked, s.Lost)
			}
			// Control-plane cost and each node's CPU and memory are read
			// from the containers' metrics endpoints.
			if tr.ControlPlane.Requests == 0 || tr.ControlPlane.Bytes == 0 {
				t.Errorf("%s: no control-plane cost: %+v", tr.Topology, tr.ControlPlane)
			}
			if len(tr.Resources) < spec.Cluster.Brokers {
				t.Errorf("%s: resources of %d nodes, want every node: %+v", tr.Topology, len(tr.Resources), tr.Resources)
			}
			for _, n := range tr.Resources {
				if n.CPUSeconds <= 0 || n.PeakMemoryBytes <= 0 {
					t.Errorf("%s: %s: no CPU or memory measured: %+v", tr.Topology, n.Node, n)
				}
			}
			for _, f := range tr.Faults {
				t.Logf("%s: %s %s -> %s at %.1fs: detection %s, convergence %s, unavailable %.2fs, recovered %v %s",
					tr.Topology, f.Action, f.Target, f.Node, f.AtS, seconds(f.DetectionS), seconds(f.ConvergenceS), f.UnavailableS, f.Recovered, f.Err)
			}
		default:
			if tr.Error == "" || !strings.Contains(tr.Error, "no driver") {
				t.Logf("%s under docker: %q", tr.Topology, tr.Error)
			}
		}
	}
	for _, top := range []string{"coordinator", "nameserver", "nameserver-controller"} {
		if !ran[top] {
			t.Errorf("%s did not run", top)
		}
	}
	t.Logf("\n%s", report.Compare([]report.Result{res}))

	// Nothing of the run is left: every container and network this process
	// created is gone.
	host, _ := os.Hostname()
	cts, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelOwner + "=" + host + "/" + strconv.Itoa(os.Getpid())}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cts {
		t.Errorf("container %v is left over", ct.Names)
	}
	nws, err := pool.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelOwner + "=" + host + "/" + strconv.Itoa(os.Getpid()): true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, nw := range nws {
		t.Errorf("network %s is left over", nw.Name)
	}
}

func seconds(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return time.Duration(*p * float64(time.Second)).Round(time.Millisecond).String()
}
