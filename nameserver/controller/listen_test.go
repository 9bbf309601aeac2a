package controller

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// TestListenOverridesPeer: a controller whose peer address is a name it
// cannot bind (a swarm task's service name) listens on Listen instead,
// and answers there; a malformed Listen is refused by Validate.
func TestListenOverridesPeer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ID, cfg.Peers, cfg.Listen = 1, []string{"controller-1.invalid:9878"}, "127.0.0.1:0"
	cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if !strings.HasPrefix(c.Addr(), "127.0.0.1:") {
		t.Fatalf("listening on %q, want 127.0.0.1", c.Addr())
	}
	if _, _, err := LeaderOf(ctx, c.Addr(), nil); err != nil {
		t.Errorf("no answer on the Listen address: %v", err)
	}
	cfg.Listen = "no-port"
	if err := cfg.Validate(); err == nil {
		t.Error("a Listen without a port passed Validate")
	}
}
