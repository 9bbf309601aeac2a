package nameserver

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	rc := DefaultRegistrarConfig()
	rc.AddFlags(fs)
	err := fs.Parse([]string{"--nameservers", "h1:9876, h2:9876", "--cluster", "C", "--group", "G",
		"--broker-id", "2", "--replication-mode", "async", "--heartbeat-interval", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.NameServers, []string{"h1:9876", "h2:9876"}) || rc.Cluster != "C" || rc.Group != "G" ||
		rc.BrokerID != 2 || rc.Mode != ModeAsync || rc.HeartbeatInterval != time.Second || rc.RoutePollInterval != 30*time.Second {
		t.Fatalf("parsed %+v", rc)
	}
	if err := rc.Validate(); err != nil {
		t.Fatal(err)
	}
	fs = flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(nopWriter{})
	rc.AddFlags(fs)
	if err := fs.Parse([]string{"--broker-id", "x"}); err == nil {
		t.Fatal("accepted a non-numeric broker id")
	}

	fs = flag.NewFlagSet("nameserver", flag.ContinueOnError)
	sc := Fast().ServerConfig()
	sc.AddFlags(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:0", "--broker-expiry", "9s"}); err != nil {
		t.Fatal(err)
	}
	if sc.Listen != "127.0.0.1:0" || sc.BrokerExpiry != 9*time.Second || sc.ScanInterval != 500*time.Millisecond {
		t.Fatalf("parsed %+v", sc)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestRun(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := Fast().ServerConfig()
	cfg.Listen, cfg.Logger = addr, log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	c := newClient(t, log, addr)
	testutil.Eventually(t, waitFor, func() error {
		_, err := c.ClusterInfo(context.Background())
		return err
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClusterInfo(context.Background()); err == nil {
		t.Fatal("name server still answers after Run returned")
	}
}
