package docker

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	dc "github.com/ory/dockertest/v3/docker"
)

// sweep removes the containers and networks of runs whose owner process on
// this host has died without cleaning up (killed by a test timeout,
// SIGKILL, a power cut). Runs of live processes and of other hosts are left
// alone.
func sweep(client *dc.Client, logger *slog.Logger) {
	host, _ := os.Hostname()
	dead := map[string]*dc.Network{} // run -> its network, if found
	cts, err := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelOwner}}})
	if err != nil {
		return
	}
	for _, ct := range cts {
		if ownerDead(ct.Labels[labelOwner], host) {
			dead[ct.Labels[labelRun]] = nil
		}
	}
	nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelOwner: true}})
	if err == nil {
		for i := range nws {
			if ownerDead(nws[i].Labels[labelOwner], host) {
				dead[nws[i].Labels[labelRun]] = &nws[i]
			}
		}
	}
	for run, nw := range dead {
		if run == "" {
			continue
		}
		logger.Info("removing containers of a dead run", "run", run)
		if err := removeRun(client, run, nw); err != nil {
			logger.Warn("sweeping a dead run", "run", run, "error", err)
		}
	}
}

// ownerDead reports whether owner ("host/pid") names a process of this host
// that no longer exists.
func ownerDead(owner, host string) bool {
	h, p, ok := strings.Cut(owner, "/")
	if !ok || h != host {
		return false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
