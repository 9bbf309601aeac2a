package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/standalone"
	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/topology"
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
	fs.BoolVar(&cfg.Storage.RecordSynced, "record-synced", cfg.Storage.RecordSynced, "keep each partition's synced lengths in DATA/.../"+storage.SyncedFile+" (for simulated power loss)")
	fs.DurationVar(&cfg.HandoffTimeout, "handoff-timeout", cfg.HandoffTimeout, "on SIGTERM, how long to keep serving while leaderships move away")
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

// standalonePlane is --control-plane's value for a broker without a
// control plane: it places and leads every replica itself.
const standalonePlane = "standalone"

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	plane, err := pickPlane(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	cfg := broker.DefaultConfig()
	fs := newFlagSet("broker", "broker --listen 127.0.0.1:9092 --data DIR [--control-plane NAME] [plane flags]", stderr)
	brokerFlags(fs, &cfg)
	fs.String("control-plane", standalonePlane, "control plane: "+strings.Join(planeNames(), ", ")+" (default: the one a plane flag implies, e.g. --etcd, else standalone)")
	var build topology.Builder
	if plane.Broker != nil {
		build = plane.Broker.Flags(fs)
	}
	fs.Usage = func() { brokerUsage(fs, plane, stderr) }
	logger, err := parseNodeFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if cfg.DataDir == "" {
		fmt.Fprintln(stderr, "--data is required: a broker keeps its logs on disk")
		return errUsage
	}
	cfg.Logger = logger
	cfg.MetricsProcess = true
	var cp broker.ControlPlane
	var built atomic.Pointer[broker.Broker] // the plane may ask before New returns
	mode := standalonePlane
	if build != nil {
		cp, mode, err = build(topology.BrokerEnv{NodeID: cfg.NodeID, DataDir: cfg.DataDir, Logger: logger,
			Replicas: func() []broker.ReplicaStatus {
				if b := built.Load(); b != nil {
					return b.Status()
				}
				return nil
			}})
	} else {
		cp, err = standalone.New(cfg.DataDir)
	}
	if err != nil {
		return err
	}
	b, err := broker.New(cfg, cp)
	if err != nil {
		return errors.Join(err, cp.Close())
	}
	built.Store(b)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Start(sctx); err != nil {
		return errors.Join(err, b.Close())
	}
	fmt.Fprintf(stdout, "broker %d serving Kafka protocol on %s (data %s, control plane: %s)\n", b.ID(), b.Addr(), cfg.DataDir, mode)
	if a := b.MetricsAddr(); a != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", a)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return b.Close()
}

// planeNames lists the registered topologies a broker can run under, and
// standalone.
func planeNames() []string {
	var out []string
	for _, d := range topology.All() {
		if d.Broker != nil {
			out = append(out, d.Name)
		}
	}
	return append(out, standalonePlane)
}

// pickPlane reads --control-plane from args, or infers the plane from the
// flag one of them implies (--etcd: coordinator, --nameservers:
// nameserver). Planes bind their flags into the one flag set only once
// chosen, so two planes may use the same flag name.
func pickPlane(args []string) (topology.Descriptor, error) {
	name := ""
	var implied []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if key == "control-plane" {
			if !hasVal && i+1 < len(args) {
				val = args[i+1]
				i++
			}
			name = val
			continue
		}
		for _, d := range topology.All() {
			if d.Broker != nil && d.Broker.Infer == key {
				implied = append(implied, d.Name)
			}
		}
	}
	switch {
	case name == standalonePlane:
		return topology.Descriptor{Name: standalonePlane}, nil
	case name != "":
		d, ok := topology.Lookup(name)
		if !ok || d.Broker == nil {
			return d, fmt.Errorf("--control-plane %q: want one of %s", name, strings.Join(planeNames(), ", "))
		}
		return d, nil
	case len(implied) > 1:
		return topology.Descriptor{}, fmt.Errorf("the flags pick several control planes (%s): give one, or --control-plane", strings.Join(implied, ", "))
	case len(implied) == 1:
		d, _ := topology.Lookup(implied[0])
		return d, nil
	}
	return topology.Descriptor{Name: standalonePlane}, nil
}

// brokerUsage prints the broker's flags, then each plane's.
func brokerUsage(fs *flag.FlagSet, chosen topology.Descriptor, w io.Writer) {
	fmt.Fprintf(w, "Usage: brokerlab broker --listen 127.0.0.1:9092 --data DIR [--control-plane NAME] [plane flags]\n\nBroker flags:\n")
	own := flag.NewFlagSet("broker", flag.ContinueOnError)
	own.SetOutput(w)
	planeFlags := flag.NewFlagSet("plane", flag.ContinueOnError)
	if chosen.Broker != nil {
		chosen.Broker.Flags(planeFlags)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if planeFlags.Lookup(f.Name) == nil {
			own.Var(f.Value, f.Name, f.Usage)
		}
	})
	own.PrintDefaults()
	for _, d := range topology.All() {
		if d.Broker == nil {
			continue
		}
		pfs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
		pfs.SetOutput(w)
		d.Broker.Flags(pfs)
		how := "--control-plane " + d.Name
		if d.Broker.Infer != "" {
			how += " or --" + d.Broker.Infer
		}
		fmt.Fprintf(w, "\nControl plane %s (%s): %s\n", d.Name, how, d.Description)
		pfs.PrintDefaults()
	}
}
