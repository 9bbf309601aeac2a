package docker

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// TestSweepRemovesDeadRuns: containers and networks whose owner process on
// this host is gone (a run killed with SIGKILL) are removed by the next
// deployment's sweep; those of live owners stay.
func TestSweepRemovesDeadRuns(t *testing.T) {
	pool := needEngine(t)
	img := testImage(t, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	owners := map[string]string{
		"dead": host + "/" + strconv.Itoa(dead.Process.Pid),
		"live": host + "/" + strconv.Itoa(os.Getpid()),
	}
	ids := map[string]string{}
	for kind, owner := range owners {
		run := "brokerlab-sweeptest-" + kind + "-" + strconv.Itoa(os.Getpid())
		nw, err := pool.Client.CreateNetwork(dc.CreateNetworkOptions{Name: run, Labels: map[string]string{labelRun: run, labelOwner: owner}, Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		ct, err := pool.Client.CreateContainer(dc.CreateContainerOptions{
			Name:       run,
			Config:     &dc.Config{Image: img.Ref(), Entrypoint: []string{"/pause"}, Labels: map[string]string{labelRun: run, labelOwner: owner}},
			HostConfig: &dc.HostConfig{NetworkMode: nw.Name},
			Context:    ctx,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pool.Client.StartContainerWithContext(ct.ID, nil, ctx); err != nil {
			t.Fatal(err)
		}
		ids[kind] = run
		t.Cleanup(func() {
			if err := removeRun(pool.Client, run, nw); err != nil {
				t.Error(err)
			}
			assertGone(t, pool, run, nw.ID)
		})
	}
	sweep(pool.Client, testLogger(t))
	for kind, run := range ids {
		cts, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelRun + "=" + run}}})
		if err != nil {
			t.Fatal(err)
		}
		nws, err := pool.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelRun + "=" + run: true}})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case kind == "dead" && (len(cts) != 0 || len(nws) != 0):
			t.Errorf("the dead owner's run is still there: %d containers, %d networks", len(cts), len(nws))
		case kind == "live" && (len(cts) != 1 || len(nws) != 1):
			t.Errorf("the live owner's run was touched: %d containers, %d networks", len(cts), len(nws))
		}
	}
}

// TestComposeConfig: docker/compose.yaml is valid for both profiles, where a
// compose tool is installed (docker compose or docker-compose).
func TestComposeConfig(t *testing.T) {
	var base []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		base = []string{"docker", "compose"}
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		base = []string{p}
	} else {
		t.Skip("docker: no compose tool (docker compose or docker-compose) installed")
	}
	for _, profile := range []string{"coordinator", "nameserver"} {
		args := append(base[1:], "-f", "compose.yaml", "--profile", profile, "config", "--quiet")
		if out, err := exec.Command(base[0], args...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", profile, err, out)
		}
	}
}
