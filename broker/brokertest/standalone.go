package brokertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/standalone"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// Standalone starts a one-node broker (its own controller, data under
// t.TempDir()) on a loopback port, logging warnings to t.Log, and kills it
// when the test ends. Clients can create topics on it with CreateTopics.
func Standalone(t testing.TB) *broker.Broker {
	t.Helper()
	dir := t.TempDir()
	cp, err := standalone.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	return Start(t, cfg, cp)
}

// Start starts a broker with cfg under cp, within Timeout, and kills it
// when the test ends.
func Start(t testing.TB, cfg broker.Config, cp broker.ControlPlane) *broker.Broker {
	t.Helper()
	b, err := broker.New(cfg, cp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Kill)
	return b
}
