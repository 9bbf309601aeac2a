package swarm

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/brokerlab/brokerlab/scenarios"
)

var (
	// errNoCuts: isolation and link cuts are packet filter rules inside a
	// task's network namespace, entered from the engine's host.
	errNoCuts = fmt.Errorf("%w: isolate and link cuts under swarm need root, nsenter and iptables on the swarm node that runs the task (the runner's host)", scenarios.ErrNotApplicable)
	// errRemote: the task runs on a node whose engine the runner does not
	// talk to.
	errRemote = fmt.Errorf("%w: task on another swarm node", scenarios.ErrNotApplicable)
)

// processAlive reports whether a process of this host exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
