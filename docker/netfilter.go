package docker

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/scenarios"
)

// errNoCuts: a link cut needs packet filter rules inside a container, which
// a scratch image cannot hold, so the runner applies them from the engine's
// host.
var errNoCuts = fmt.Errorf("%w: per-link cuts under docker need root, nsenter and iptables on the engine's host (isolate works everywhere)", scenarios.ErrNotApplicable)

// cutter drops traffic between two containers with iptables rules run in a
// container's network namespace (nsenter -t PID -n). The image stays
// FROM scratch and needs no NET_ADMIN capability.
type cutter struct {
	nsenter, iptables string
	logger            *slog.Logger
}

// newCutter returns a cutter when this process can enter the containers'
// namespaces: root, on the engine's host, with nsenter and iptables; else
// nil.
func newCutter(logger *slog.Logger) *cutter {
	if os.Geteuid() != 0 || !strings.HasPrefix(image.Endpoint(), "unix://") {
		return nil
	}
	ns, err1 := exec.LookPath("nsenter")
	ipt, err2 := exec.LookPath("iptables")
	if err1 != nil || err2 != nil {
		return nil
	}
	return &cutter{nsenter: ns, iptables: ipt, logger: logger}
}

// drop makes the container with main process pid drop every packet from
// and to peer.
func (c *cutter) drop(pid int, peer string) error {
	if err := c.checkPID(pid); err != nil {
		return err
	}
	if err := c.run(pid, "-I", "INPUT", "-s", peer, "-j", "DROP"); err != nil {
		return err
	}
	return c.run(pid, "-I", "OUTPUT", "-d", peer, "-j", "DROP")
}

// dropAll makes the container with main process pid drop every packet
// from and to any of peers, with one rule each way (iptables expands the
// comma-separated list), so a peer isolation costs two calls, not two per
// peer.
func (c *cutter) dropAll(pid int, peers []string) error {
	if len(peers) == 0 {
		return nil
	}
	return c.drop(pid, strings.Join(peers, ","))
}

// undrop removes drop's rules; missing rules are not an error.
func (c *cutter) undrop(pid int, peer string) {
	if c.checkPID(pid) != nil {
		return
	}
	for range 8 { // drop inserts one of each; a few more in case of repeats
		if c.run(pid, "-D", "INPUT", "-s", peer, "-j", "DROP") != nil {
			break
		}
	}
	for range 8 {
		if c.run(pid, "-D", "OUTPUT", "-d", peer, "-j", "DROP") != nil {
			break
		}
	}
}

// undropAll removes dropAll's rules.
func (c *cutter) undropAll(pid int, peers []string) {
	if len(peers) > 0 {
		c.undrop(pid, strings.Join(peers, ","))
	}
}

func (c *cutter) checkPID(pid int) error {
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
		return fmt.Errorf("docker: iptables %s in pid %d: %w: %s", strings.Join(rule, " "), pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}
