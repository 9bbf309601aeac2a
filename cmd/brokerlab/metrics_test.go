package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestControllerMetrics runs `brokerlab controller --metrics-listen` and
// `brokerlab nameserver --controller --metrics-listen` (the controller
// embedded: its series on the name server's endpoint), lets a broker-side
// client heartbeat to each, and scrapes the endpoint over HTTP until the
// controller's series show the election and the heartbeats.
func TestControllerMetrics(t *testing.T) {
	cases := []struct {
		name string
		args func(ctrl, metricsAddr string) []string
		also string // a series of the embedding node that must be there too
	}{
		{"standalone", func(ctrl, m string) []string {
			return []string{"controller", "--peers", ctrl, "--metrics-listen", m, "--tick", "20ms", "--log-level", "warn"}
		}, "process_cpu_seconds_total"},
		{"embedded", func(ctrl, m string) []string {
			return []string{"nameserver", "--listen", freeAddr(t), "--metrics-listen", m, "--controller",
				"--controller-peers", ctrl, "--controller-tick", "20ms", "--log-level", "warn"}
		}, "brokerlab_nameserver_registrations_total"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctrl, maddr := freeAddr(t), freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var stdout, stderr bytes.Buffer
			wg.Go(func() { run(ctx, c.args(ctrl, maddr), &stdout, &stderr) })
			t.Cleanup(func() { cancel(); wg.Wait() })

			url := "http://" + maddr + metrics.Path
			cfg := controller.Production().ClientConfig()
			cfg.Controllers, cfg.Cluster, cfg.Group, cfg.BrokerID = []string{ctrl}, "c1", "a", 1
			cfg.HeartbeatInterval = 50 * time.Millisecond
			cl, err := controller.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Start(0, "127.0.0.1:9", nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cl.Close() })
			var first float64 = -1
			testutil.Eventually(t, 30*time.Second, func() error {
				ss, err := metrics.Scrape(context.Background(), nil, url)
				if err != nil {
					return err
				}
				hb := ss.Sum("brokerlab_controller_heartbeats_total", nil)
				if first < 0 {
					first = hb
				}
				switch {
				case ss.Sum("brokerlab_controller_is_leader", nil) != 1 || ss.Sum("brokerlab_controller_raft_term", nil) < 1:
					return fmt.Errorf("no leader yet")
				case hb <= first || hb < 2:
					return fmt.Errorf("heartbeats %v (first read %v)", hb, first)
				case ss.Sum("brokerlab_controller_brokers_active", nil) != 1:
					return fmt.Errorf("brokers active %v", ss.Sum("brokerlab_controller_brokers_active", nil))
				case ss.Sum("brokerlab_controller_master_switches_total", nil) != 0 ||
					ss.Sum("brokerlab_controller_sync_state_set_changes_total", nil) != 1:
					return fmt.Errorf("unexpected state changes")
				}
				for _, s := range ss {
					if s.Name == c.also {
						return nil
					}
				}
				return fmt.Errorf("no %s on the page", c.also)
			})
			cancel()
			wg.Wait() // stdout is written by the command's goroutine
			if !strings.Contains(stdout.String(), "metrics on http://"+maddr) {
				t.Errorf("stdout does not name the metrics address: %q", stdout.String())
			}
		})
	}
}
