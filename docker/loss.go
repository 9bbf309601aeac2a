package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// Packet loss on a link "A - B": in each end's network namespace, an
// iptables rule on OUTPUT to the other end drops each packet with
// probability p (the statistic match in random mode), so each direction
// loses p once. A second rule in front of it, with no target, counts every
// packet to the peer, so a test can read what fraction was dropped
// (lossCounts). The rules go through Launcher.Netfilter like cuts'; TCP
// retransmits what was dropped, as on a lossy network, and memberlist's
// UDP loses it.
//
// netem would do the same in a qdisc, but the engine's kernel here is built
// without it (CONFIG_NET_SCH_NETEM unset: "Specified qdisc kind is
// unknown") and a scratch image cannot carry tc; the statistic match is in
// every kernel with iptables. Where Netfilter is unavailable (not root, no
// nsenter or iptables, a remote engine) or the match is missing, loss is
// ErrNotApplicable with the reason. Rules are not applied again after a
// restart on launchers whose nodes lose their namespace (KeepsNetwork
// false): the loss then ends with the restart.

// lossRules are the counting rule and the drop rule for a fraction p of
// the packets to peer, without the -I/-D verb.
func lossRules(peer string, p float64) (count, drop []string) {
	count = []string{"OUTPUT", "-d", peer}
	drop = append(append([]string(nil), count...), "-m", "statistic", "--mode", "random",
		"--probability", strconv.FormatFloat(p, 'f', 6, 64), "-j", "DROP")
	return count, drop
}

// loss makes the link between nodes a and b lose a fraction p of its
// packets each way. A link already losing is changed to p.
func (c *Cluster) loss(ctx context.Context, a, b string, p float64) error {
	if p <= 0 || p > 1 {
		return fmt.Errorf("%s: loss %v on %s - %s: want a fraction in (0, 1]", c.rt, p, a, b)
	}
	na, nb, err := c.linkEnds(a, b)
	if err != nil {
		return err
	}
	if err := c.unloss(ctx, a, b); err != nil {
		return err
	}
	c.mu.Lock()
	if c.losses == nil {
		c.losses = map[link]float64{}
	}
	c.losses[newLink(a, b)] = p
	ips := [2]string{na.ip, nb.ip}
	c.mu.Unlock()
	for i, e := range [2][2]*Node{{na, nb}, {nb, na}} {
		peer := ips[1-i]
		if peer == "" {
			return errors.Join(fmt.Errorf("%s: %s has no address on the run's network", c.rt, e[1].Name), c.unloss(ctx, a, b))
		}
		count, drop := lossRules(peer, p)
		if err := c.l.Netfilter(ctx, e[0], append([]string{"-I"}, count...)...); err != nil {
			return errors.Join(err, c.unloss(ctx, a, b))
		}
		// Second in the chain: after the counting rule.
		if err := c.l.Netfilter(ctx, e[0], append([]string{"-I", drop[0], "2"}, drop[1:]...)...); err != nil {
			err = nodes.NotApplicable("loss under %s: no iptables statistic match here: %v", c.rt, err)
			return errors.Join(err, c.unloss(ctx, a, b))
		}
	}
	c.logger.Info("link loses packets", "link", a+" - "+b, "loss", p)
	return nil
}

// unloss removes a loss on the link between a and b; a link without one
// is not an error.
func (c *Cluster) unloss(ctx context.Context, a, b string) error {
	l := newLink(a, b)
	c.mu.Lock()
	p, ok := c.losses[l]
	delete(c.losses, l)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	na, nb, err := c.linkEnds(a, b)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ips := [2]string{na.ip, nb.ip}
	c.mu.Unlock()
	for i, n := range [2]*Node{na, nb} {
		count, drop := lossRules(ips[1-i], p)
		for _, rule := range [][]string{drop, count} {
			// Inserted once each; a missing rule (a failed loss) is fine.
			_ = c.l.Netfilter(ctx, n, append([]string{"-D"}, rule...)...)
		}
	}
	return nil
}

// unlossAll removes every loss.
func (c *Cluster) unlossAll(ctx context.Context) error {
	c.mu.Lock()
	var ls []link
	for l := range c.losses {
		ls = append(ls, l)
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, c.unloss(ctx, l[0], l[1]))
	}
	return errors.Join(errs...)
}

// lossCounts returns the packets the docker runtime's nodes a and b sent
// each other, both directions, and how many of them the loss rules
// dropped, read from the rules' counters.
func (c *containers) lossCounts(ctx context.Context, na, nb *Node, ipA, ipB string) (sent, dropped int64, err error) {
	if c.nsenter == nil {
		return 0, 0, errNoCuts
	}
	for _, e := range []struct {
		from *Node
		peer string
	}{{na, ipB}, {nb, ipA}} {
		ct, err := c.pool.Client.InspectContainer(c.ctr(e.from).sandbox)
		if err != nil {
			return 0, 0, err
		}
		pid := strconv.Itoa(ct.State.Pid)
		if _, err := os.Stat("/proc/" + pid + "/ns/net"); err != nil {
			return 0, 0, err
		}
		out, err := exec.CommandContext(ctx, c.nsenter.nsenter, "-t", pid, "-n", c.nsenter.iptables, "-w", "-S", "OUTPUT", "-v").Output()
		if err != nil {
			return 0, 0, fmt.Errorf("docker: list rules of %s: %w", e.from.Name, err)
		}
		s, d, found := parseLossCounters(out, e.peer)
		if !found {
			return 0, 0, fmt.Errorf("docker: no loss rules in %s for %s", e.from.Name, e.peer)
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
