package controller

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// scrape reads one controller's endpoint over HTTP.
func scrape(t *testing.T, c *Controller) metrics.Samples {
	t.Helper()
	ss, err := metrics.Scrape(context.Background(), nil, "http://"+c.MetricsAddr()+metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestMetrics scrapes three controllers over HTTP while two brokers
// heartbeat, the master's connection closes (a master switch) and the
// Raft leader is closed (a new leader in a later term).
func TestMetrics(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	cs := startControllersWith(t, 3, log, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	l := leader(t, cs)
	b1, b2 := startSynced(t, cs, log)
	before := scrape(t, l)
	hb := map[string]string{"type": "heartbeat"}
	// Heartbeats keep flowing: wait until the counters moved and both
	// brokers are active.
	testutil.Eventually(t, 10*time.Second, func() error {
		now := scrape(t, l)
		for _, m := range []struct {
			name  string
			match map[string]string
		}{
			{"brokerlab_controller_heartbeats_total", nil},
			{"brokerlab_controller_requests_total", hb},
			{"brokerlab_controller_broker_bytes_total", map[string]string{"direction": "received"}},
			{"brokerlab_controller_broker_bytes_total", map[string]string{"direction": "sent"}},
			{"brokerlab_controller_raft_bytes_total", map[string]string{"direction": "sent"}},
		} {
			if b, a := before.Sum(m.name, m.match), now.Sum(m.name, m.match); a <= b {
				return fmt.Errorf("%s%v did not move: %v -> %v", m.name, m.match, b, a)
			}
		}
		if n := now.Sum("brokerlab_controller_brokers_active", nil); n != 2 {
			return fmt.Errorf("%v brokers active, want 2", n)
		}
		return nil
	})
	if v := before.Sum("brokerlab_controller_is_leader", nil); v != 1 {
		t.Errorf("leader's is_leader = %v", v)
	}
	if v := before.Sum("brokerlab_controller_raft_leader", nil); uint64(v) != l.cfg.ID {
		t.Errorf("raft_leader = %v, want %d", v, l.cfg.ID)
	}
	if v := before.Sum("brokerlab_controller_sync_state_set_changes_total", nil); v < 2 {
		t.Errorf("sync_state_set_changes_total = %v after a registration and an alter, want >= 2", v)
	}
	if v := before.Sum("brokerlab_controller_requests_total", map[string]string{"type": "alter-sync-set"}); v != 1 {
		t.Errorf("alter-sync-set requests = %v, want 1", v)
	}
	for _, c := range cs {
		if c == l {
			continue
		}
		ss := scrape(t, c)
		if ss.Sum("brokerlab_controller_is_leader", nil) != 0 || ss.Sum("brokerlab_controller_raft_term", nil) < 1 {
			t.Errorf("follower %d: is_leader %v, term %v", c.cfg.ID, ss.Sum("brokerlab_controller_is_leader", nil),
				ss.Sum("brokerlab_controller_raft_term", nil))
		}
		if ss.Sum("brokerlab_controller_raft_bytes_total", map[string]string{"direction": "received"}) == 0 {
			t.Errorf("follower %d received no Raft bytes", c.cfg.ID)
		}
	}

	// The master's connection closes: the leader elects broker 2; every
	// controller applies the switch.
	_ = b1.Close()
	wantMaster(t, b2, 2)
	for _, c := range cs {
		testutil.Eventually(t, 10*time.Second, func() error {
			ss := scrape(t, c)
			if b, a := before.Sum("brokerlab_controller_master_switches_total", nil), ss.Sum("brokerlab_controller_master_switches_total", nil); a < b+1 {
				return fmt.Errorf("controller %d: master switches %v -> %v", c.cfg.ID, b, a)
			}
			return nil
		})
	}
	if b, a := before.Sum("brokerlab_controller_master_elections_total", nil), scrape(t, l).Sum("brokerlab_controller_master_elections_total", nil); a < b+1 {
		t.Errorf("leader's master elections %v -> %v", b, a)
	}

	// The Raft leader goes: another wins a later term.
	term := scrape(t, l).Sum("brokerlab_controller_raft_term", nil)
	_ = l.Close()
	var rest []*Controller
	for _, c := range cs {
		if c != l {
			rest = append(rest, c)
		}
	}
	nl := leader(t, rest)
	testutil.Eventually(t, 10*time.Second, func() error {
		ss := scrape(t, nl)
		if ss.Sum("brokerlab_controller_raft_term", nil) <= term || ss.Sum("brokerlab_controller_is_leader", nil) != 1 ||
			ss.Sum("brokerlab_controller_raft_leader_changes_total", nil) < 2 {
			return fmt.Errorf("new leader %d: term %v (was %v), is_leader %v, leader changes %v", nl.cfg.ID,
				ss.Sum("brokerlab_controller_raft_term", nil), term, ss.Sum("brokerlab_controller_is_leader", nil),
				ss.Sum("brokerlab_controller_raft_leader_changes_total", nil))
		}
		return nil
	})
}
