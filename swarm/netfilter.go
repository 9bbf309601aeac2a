package swarm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/brokerlab/brokerlab/docker/image"
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

// cutter applies packet filter rules in a task container's network
// namespace (nsenter -t PID -n iptables): the image stays FROM scratch,
// and no container needs NET_ADMIN. Swarm refuses to disconnect a task
// from its service's network, so isolation is a rule too.
type cutter struct {
	nsenter, iptables string
}

// newCutter returns a cutter when this process can enter the tasks'
// namespaces (root, the local engine, nsenter and iptables), else nil.
func newCutter() *cutter {
	if os.Geteuid() != 0 || !strings.HasPrefix(image.Endpoint(), "unix://") {
		return nil
	}
	ns, err1 := exec.LookPath("nsenter")
	ipt, err2 := exec.LookPath("iptables")
	if err1 != nil || err2 != nil {
		return nil
	}
	return &cutter{nsenter: ns, iptables: ipt}
}

// The rules: a link cut drops one peer's address; isolation drops
// everything but loopback.
var (
	isolateIn  = []string{"INPUT", "!", "-i", "lo", "-j", "DROP"}
	isolateOut = []string{"OUTPUT", "!", "-o", "lo", "-j", "DROP"}
)

func (c *cutter) isolate(pid int) error {
	if err := checkPID(pid); err != nil {
		return err
	}
	return errors.Join(c.run(pid, append([]string{"-I"}, isolateIn...)...), c.run(pid, append([]string{"-I"}, isolateOut...)...))
}

func (c *cutter) unisolate(pid int) {
	if checkPID(pid) != nil {
		return
	}
	c.deleteAll(pid, isolateIn)
	c.deleteAll(pid, isolateOut)
}

func (c *cutter) drop(pid int, peer string) error {
	if err := checkPID(pid); err != nil {
		return err
	}
	if peer == "" {
		return errors.New("swarm: peer has no overlay address")
	}
	if err := c.run(pid, "-I", "INPUT", "-s", peer, "-j", "DROP"); err != nil {
		return err
	}
	return c.run(pid, "-I", "OUTPUT", "-d", peer, "-j", "DROP")
}

func (c *cutter) undrop(pid int, peer string) {
	if checkPID(pid) != nil || peer == "" {
		return
	}
	c.deleteAll(pid, []string{"INPUT", "-s", peer, "-j", "DROP"})
	c.deleteAll(pid, []string{"OUTPUT", "-d", peer, "-j", "DROP"})
}

// deleteAll deletes a rule until none is left (at most a few repeats).
func (c *cutter) deleteAll(pid int, rule []string) {
	for range 8 {
		if c.run(pid, append([]string{"-D"}, rule...)...) != nil {
			return
		}
	}
}

func checkPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("%w (no process)", errNoCuts)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/net"); err != nil {
		return fmt.Errorf("%w: %v", errNoCuts, err)
	}
	return nil
}

func (c *cutter) run(pid int, rule ...string) error {
	args := append([]string{"-t", strconv.Itoa(pid), "-n", c.iptables, "-w"}, rule...)
	out, err := exec.Command(c.nsenter, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("swarm: iptables %s in pid %d: %w: %s", strings.Join(rule, " "), pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// processAlive reports whether a process of this host exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
