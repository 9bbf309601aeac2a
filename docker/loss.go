package docker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// Packet loss on a link "A - B" under docker: in each end's sandbox, an
// iptables rule on OUTPUT to the other end drops each packet with
// probability p (the statistic match in random mode), so each direction
// loses p once. A second rule in front of it, with no target, counts every
// packet to the peer, so the runtime can say what fraction it actually
// dropped (lossCounts). The rules are entered like cuts' (nsenter into the
// sandbox's namespace, netfilter.go); TCP retransmits what was dropped, as
// on a lossy network, and memberlist's UDP loses it.
//
// netem would do the same in a qdisc, but the engine's kernel here is built
// without it (CONFIG_NET_SCH_NETEM unset: "Specified qdisc kind is
// unknown") and a scratch image cannot carry tc; the statistic match is in
// every kernel with iptables. Where the cutter is unavailable (not root, no
// nsenter or iptables, a remote engine) or the match is missing, loss is
// ErrNotApplicable with the reason.

// lossRule is the iptables rule spec that drops a fraction p of the packets
// to peer; count is the counting rule before it.
func lossRule(peer string, p float64) (count, drop []string) {
	count = []string{"OUTPUT", "-d", peer}
	drop = append(append([]string(nil), count...), "-m", "statistic", "--mode", "random",
		"--probability", strconv.FormatFloat(p, 'f', 6, 64), "-j", "DROP")
	return count, drop
}

// loss makes the link between nodes a and b lose a fraction p of its
// packets each way. A link already losing is changed to p.
func (c *cluster) loss(a, b string, p float64) error {
	if p <= 0 || p > 1 {
		return fmt.Errorf("docker: loss %v on %s - %s: want a fraction in (0, 1]", p, a, b)
	}
	if c.cutter == nil {
		return nodes.NotApplicable("loss under docker: %v", errNoCuts)
	}
	na, err := c.node(a)
	if err != nil {
		return err
	}
	nb, err := c.node(b)
	if err != nil {
		return err
	}
	if err := c.unloss(a, b); err != nil {
		return err
	}
	l := newLink(a, b)
	c.mu.Lock()
	if c.losses == nil {
		c.losses = map[link]float64{}
	}
	c.losses[l] = p
	c.mu.Unlock()
	for _, e := range [][2]*node{{na, nb}, {nb, na}} {
		pid := c.sandboxPID(e[0])
		if err := c.cutter.checkPID(pid); err != nil {
			return errors.Join(err, c.unloss(a, b))
		}
		count, drop := lossRule(e[1].ip, p)
		if err := c.cutter.run(pid, append([]string{"-I"}, count...)...); err != nil {
			return errors.Join(err, c.unloss(a, b))
		}
		// Second in the chain: after the counting rule, before anything
		// inserted earlier.
		if err := c.cutter.run(pid, append([]string{"-I", drop[0], "2"}, drop[1:]...)...); err != nil {
			err = nodes.NotApplicable("loss under docker: the kernel's iptables has no statistic match: %v", err)
			return errors.Join(err, c.unloss(a, b))
		}
	}
	c.logger.Info("link loses packets", "link", a+" - "+b, "loss", p)
	return nil
}

// unloss removes a loss on the link between a and b; a link without one
// is not an error.
func (c *cluster) unloss(a, b string) error {
	l := newLink(a, b)
	c.mu.Lock()
	p, ok := c.losses[l]
	delete(c.losses, l)
	c.mu.Unlock()
	if !ok || c.cutter == nil {
		return nil
	}
	var errs []error
	for _, e := range [2][2]string{{a, b}, {b, a}} {
		from, err1 := c.node(e[0])
		to, err2 := c.node(e[1])
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, err)
			continue
		}
		pid := c.sandboxPID(from)
		if c.cutter.checkPID(pid) != nil {
			continue // the sandbox is gone, and its rules with it
		}
		count, drop := lossRule(to.ip, p)
		for _, rule := range [][]string{drop, count} {
			// Inserted once each; a missing rule (a failed loss) is fine.
			_ = c.cutter.run(pid, append([]string{"-D"}, rule...)...)
		}
	}
	return errors.Join(errs...)
}

// unlossAll removes every loss.
func (c *cluster) unlossAll() error {
	c.mu.Lock()
	var ls []link
	for l := range c.losses {
		ls = append(ls, l)
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, c.unloss(l[0], l[1]))
	}
	return errors.Join(errs...)
}

// lossCounts returns the packets sent on the link between a and b, both
// directions, and how many of them the loss rules dropped, read from the
// rules' counters.
func (c *cluster) lossCounts(a, b string) (sent, dropped int64, err error) {
	if c.cutter == nil {
		return 0, 0, errNoCuts
	}
	for _, e := range [2][2]string{{a, b}, {b, a}} {
		from, err1 := c.node(e[0])
		to, err2 := c.node(e[1])
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, err
		}
		pid := c.sandboxPID(from)
		if err := c.cutter.checkPID(pid); err != nil {
			return 0, 0, err
		}
		args := []string{"-t", strconv.Itoa(pid), "-n", c.cutter.iptables, "-w", "-S", "OUTPUT", "-v"}
		out, err := exec.Command(c.cutter.nsenter, args...).Output()
		if err != nil {
			return 0, 0, fmt.Errorf("docker: list rules of %s: %w", e[0], err)
		}
		s, d, found := parseLossCounters(out, to.ip)
		if !found {
			return 0, 0, fmt.Errorf("docker: no loss rules in %s for %s", e[0], to.ip)
		}
		sent, dropped = sent+s, dropped+d
	}
	return sent, dropped, nil
}

// parseLossCounters reads `iptables -S OUTPUT -v` output: the packet
// counter of the counting rule and of the drop rule for peer.
func parseLossCounters(out []byte, peer string) (sent, dropped int64, found bool) {
	dst := "-d " + peer + "/32 "
	sc := bufio.NewScanner(bytes.NewReader(out))
	var haveCount, haveDrop bool
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A OUTPUT ") || !strings.Contains(line, dst) {
			continue
		}
		f := strings.Fields(line[strings.Index(line, " -c ")+1:])
		if len(f) < 3 || f[0] != "-c" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, "-m statistic") && strings.HasSuffix(line, "-j DROP"):
			dropped, haveDrop = n, true
		case !strings.Contains(line, " -j ") && !strings.Contains(line, " -m "):
			sent, haveCount = n, true
		}
	}
	return sent, dropped, haveCount && haveDrop
}
