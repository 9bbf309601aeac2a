package swarm

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	dc "github.com/ory/dockertest/v3/docker"
)

// TestSweepDeadRun leaves what a killed run leaves (a network, a volume
// and, where a swarm runs, a service, labelled with an owner process that
// is gone) and checks that the next run's sweep removes all of it, and
// leaves a live owner's things alone.
func TestSweepDeadRun(t *testing.T) {
	client, eng, _ := needSwarm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skipf("swarm: cannot make a dead process id: %v", err)
	}
	host, _ := os.Hostname()
	dead := host + "/" + strconv.Itoa(gone.Process.Pid)
	if processAlive(gone.Process.Pid) {
		t.Skip("swarm: the dead process id is in use again")
	}
	mk := func(run, owner string) {
		labels := map[string]string{labelRun: run, labelOwner: owner}
		nw, err := client.CreateNetwork(dc.CreateNetworkOptions{Name: run, Driver: "bridge", Labels: labels, Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.RemoveNetwork(nw.ID) })
		v, err := client.CreateVolume(dc.CreateVolumeOptions{Name: run, Labels: labels, Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.RemoveVolumeWithOptions(dc.RemoveVolumeOptions{Name: v.Name}) })
	}
	deadRun := "blswarm-test-dead-" + strconv.Itoa(os.Getpid())
	liveRun := "blswarm-test-live-" + strconv.Itoa(os.Getpid())
	mk(deadRun, dead)
	mk(liveRun, owner())
	if inf, err := eng.info(ctx); err == nil && inf.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
		one := uint64(0)
		labels := map[string]string{labelRun: deadRun, labelOwner: dead}
		_, err := eng.createService(ctx, swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: deadRun, Labels: labels},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "brokerlab:local", Labels: labels}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sweep(ctx, client, eng, testLogger(t))
	assertNothingLeft(t, client, eng, labelRun+"="+deadRun, false)
	nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelRun + "=" + liveRun: true}})
	if err != nil || len(nws) != 1 {
		t.Errorf("the live run's network: %d, %v", len(nws), err)
	}
	vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {labelRun + "=" + liveRun}}})
	if err != nil || len(vols) != 1 {
		t.Errorf("the live run's volume: %d, %v", len(vols), err)
	}
}
