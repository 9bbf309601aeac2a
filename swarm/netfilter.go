package swarm

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/brokerlab/brokerlab/scenarios"
)

var (
	// errNoCuts: isolation and link cuts are packet filter rules inside a
	// task's network namespace, which the fault agent of the task's swarm
	// node applies with that node's nsenter and iptables.
	errNoCuts = fmt.Errorf("%w: isolate and link cuts under swarm need nsenter and iptables on the swarm node that runs the task", scenarios.ErrNotApplicable)
	// errRemote: no fault agent answers for the task's swarm node.
	errRemote = fmt.Errorf("%w: task on a swarm node without a fault agent", scenarios.ErrNotApplicable)
)

// processAlive reports whether a process of this host exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
