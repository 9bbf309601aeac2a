package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/standalone"
	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/nameserver"
)

// brokerFlags binds broker.Config to flags: one source of truth for every
// setting.
func brokerFlags(fs *flag.FlagSet, cfg *broker.Config) {
	fs.Func("id", "broker node id (default 0)", func(s string) error {
		var v int32
		_, err := fmt.Sscan(s, &v)
		cfg.NodeID = v
		return err
	})
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address to listen on")
	fs.StringVar(&cfg.Advertise, "advertise", cfg.Advertise, "host:port given to clients (default: the listen address)")
	fs.StringVar(&cfg.Rack, "rack", cfg.Rack, "rack id for replica placement")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (required: logs are durable)")
	fs.Int64Var(&cfg.Storage.SegmentBytes, "segment-bytes", cfg.Storage.SegmentBytes, "roll a log segment at this size")
	fs.Int64Var(&cfg.Storage.RetentionBytes, "retention-bytes", cfg.Storage.RetentionBytes, "per-partition size limit, <= 0 keeps all")
	fs.DurationVar(&cfg.Storage.RetentionAge, "retention-age", cfg.Storage.RetentionAge, "delete segments older than this, 0 keeps all")
	fs.Func("fsync", "fsync policy: never, interval or always (default never)", func(s string) error {
		cfg.Storage.Fsync = storage.FsyncPolicy(s)
		return nil
	})
	fs.DurationVar(&cfg.Storage.FsyncInterval, "fsync-interval", cfg.Storage.FsyncInterval, "fsync period with --fsync interval")
	fs.Func("max-frame-bytes", "largest request accepted (default 104857600)", func(s string) error {
		_, err := fmt.Sscan(s, &cfg.MaxFrameBytes)
		return err
	})
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "cap on client connections, 0 = unlimited")
	fs.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", cfg.AutoCreateTopics, "create unknown topics on Metadata and Produce")
	fs.DurationVar(&cfg.ReplicaLagMax, "replica-lag-max", cfg.ReplicaLagMax, "drop a follower from the ISR after lagging this long")
	fs.DurationVar(&cfg.ReplicaFetchWait, "replica-fetch-wait", cfg.ReplicaFetchWait, "long-poll wait of follower fetches")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "serve Prometheus metrics on this address at /metrics (default: off)")
}

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := broker.DefaultConfig()
	fs := newFlagSet("broker", "broker --listen 127.0.0.1:9092 --data DIR [--etcd ...|--nameservers ...]", stderr)
	brokerFlags(fs, &cfg)
	coord := coordinator.DefaultConfig()
	coord.Endpoints = nil // no --etcd means not a coordinator cluster
	coord.AddFlags(fs)
	reg := nameserver.DefaultRegistrarConfig()
	reg.AddFlags(fs)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	if cfg.DataDir == "" {
		fmt.Fprintln(stderr, "--data is required: a broker keeps its logs on disk")
		return errUsage
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.MetricsProcess = true
	var cp broker.ControlPlane
	mode := "standalone"
	switch {
	case len(coord.Endpoints) > 0 && len(reg.NameServers) > 0:
		fmt.Fprintln(stderr, "--etcd and --nameservers pick different control planes: give one")
		return errUsage
	case len(coord.Endpoints) > 0:
		mode = "coordinator (etcd " + strings.Join(coord.Endpoints, ",") + ")"
		coord.Logger = logger.With("component", "coordinator")
		cp, err = coordinator.New(coord)
	case len(reg.NameServers) > 0:
		mode = "nameserver (" + strings.Join(reg.NameServers, ",") + ")"
		reg.DataDir = cfg.DataDir
		reg.Logger = logger.With("component", "registrar")
		cp, err = nameserver.NewRegistrar(reg)
	default:
		cp, err = standalone.New(cfg.DataDir)
	}
	if err != nil {
		return err
	}
	b, err := broker.New(cfg, cp)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Start(sctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "broker %d serving Kafka protocol on %s (data %s, control plane: %s)\n", b.ID(), b.Addr(), cfg.DataDir, mode)
	if a := b.MetricsAddr(); a != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", a)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return b.Close()
}
