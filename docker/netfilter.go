package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Packet filter rules in a node's network namespace (Launcher.Netfilter):
// a link cut drops one peer's address both ways, isolation from peers
// drops every other node's address in one rule each way (iptables expands
// a comma-separated list), and isolation without a Disconnector drops
// everything but loopback. The image stays FROM scratch: the rules are
// run from outside the container.

// The rules isolation adds, without the -I/-D verb.
var (
	isolateIn  = []string{"INPUT", "!", "-i", "lo", "-j", "DROP"}
	isolateOut = []string{"OUTPUT", "!", "-o", "lo", "-j", "DROP"}
)

func dropIn(peers string) []string  { return []string{"INPUT", "-s", peers, "-j", "DROP"} }
func dropOut(peers string) []string { return []string{"OUTPUT", "-d", peers, "-j", "DROP"} }

// rules inserts (on) or deletes every one of rules in n's namespace.
// Deletion repeats while a rule is there (a few times at most) and is not
// an error when it is gone.
func (c *Cluster) rules(ctx context.Context, n *Node, on bool, rules ...[]string) error {
	var errs []error
	for _, r := range rules {
		if on {
			errs = append(errs, c.l.Netfilter(ctx, n, append([]string{"-I"}, r...)...))
			continue
		}
		for range 8 {
			if c.l.Netfilter(ctx, n, append([]string{"-D"}, r...)...) != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// cutRules drops (on) or lets through the traffic between a and b, in
// both namespaces.
func (c *Cluster) cutRules(ctx context.Context, a, b *Node, on bool) error {
	var errs []error
	for _, p := range [][2]*Node{{a, b}, {b, a}} {
		c.mu.Lock()
		peer := p[1].ip
		c.mu.Unlock()
		if peer == "" {
			errs = append(errs, fmt.Errorf("%s: %s has no address on the run's network", c.rt, p[1].Name))
			continue
		}
		errs = append(errs, c.rules(ctx, p[0], on, dropIn(peer), dropOut(peer)))
	}
	return errors.Join(errs...)
}

// isolateRules drops (on) or lets through everything but loopback.
func (c *Cluster) isolateRules(ctx context.Context, n *Node, on bool) error {
	return c.rules(ctx, n, on, isolateIn, isolateOut)
}

// peerRules drops (on) or lets through the addresses of n's peersCut.
func (c *Cluster) peerRules(ctx context.Context, n *Node, on bool) error {
	c.mu.Lock()
	var ips []string
	for _, name := range n.peersCut {
		if ip := c.nodes[name].ip; ip != "" {
			ips = append(ips, ip)
		}
	}
	c.mu.Unlock()
	if len(ips) == 0 {
		return nil
	}
	peers := strings.Join(ips, ",")
	return c.rules(ctx, n, on, dropIn(peers), dropOut(peers))
}

// Nsenter runs iptables in a process's network namespace from the engine's
// host (nsenter -t PID -n): no container needs NET_ADMIN.
type Nsenter struct {
	nsenter, iptables string
}

// NewNsenter returns an Nsenter when this process can enter other
// processes' namespaces here: root, with nsenter and iptables; else nil.
// The caller checks that its engine runs on this host.
func NewNsenter() *Nsenter {
	if os.Geteuid() != 0 {
		return nil
	}
	ns, err1 := exec.LookPath("nsenter")
	ipt, err2 := exec.LookPath("iptables")
	if err1 != nil || err2 != nil {
		return nil
	}
	return &Nsenter{nsenter: ns, iptables: ipt}
}

// Iptables runs `iptables -w rule...` in the network namespace of pid.
func (s *Nsenter) Iptables(ctx context.Context, pid int, rule ...string) error {
	if pid <= 0 {
		return errors.New("no process")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/net"); err != nil {
		return err
	}
	args := append([]string{"-t", strconv.Itoa(pid), "-n", s.iptables, "-w"}, rule...)
	out, err := exec.CommandContext(ctx, s.nsenter, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s in pid %d: %w: %s", strings.Join(rule, " "), pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}
