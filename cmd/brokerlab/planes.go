package main

import (
	"context"
	"fmt"
	"io"

	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
	"golang.org/x/sync/errgroup"
)

func init() {
	extraCommands = append(extraCommands,
		command{"coordinator", "run one etcd member of a coordinator cluster (the ZooKeeper role)", runCoordinator},
		command{"nameserver", "run one RocketMQ-style name server (with --controller: and a controller, RocketMQ 5)", runNameServer},
		command{"controller", "run one standalone controller of the nameserver-controller topology (RocketMQ 5)", runController},
	)
}

func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := coordinator.DefaultEtcdConfig()
	fs := newFlagSet("coordinator", "coordinator --data DIR --listen http://127.0.0.1:2379 [--peer-listen URL --name N --initial-cluster ...]", stderr)
	cfg.AddFlags(fs)
	logger, err := parseNodeFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	fmt.Fprintf(stdout, "etcd member %s: clients on %v, data in %s\n", cfg.Name, cfg.ListenClientURLs, cfg.DataDir)
	return coordinator.RunEtcd(ctx, cfg)
}

func runNameServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := nameserver.DefaultConfig()
	fs := newFlagSet("nameserver", "nameserver --listen 127.0.0.1:9876 [--controller --controller-id N --controller-peers a,b,c]", stderr)
	cfg.AddFlags(fs)
	withCtrl := fs.Bool("controller", false, "also run a controller in this process (RocketMQ's enableControllerInNamesrv)")
	ccfg := controller.DefaultConfig()
	ccfg.AddFlags(fs, "controller-")
	logger, err := parseNodeFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.MetricsProcess = true
	fmt.Fprintf(stdout, "name server listening on %s\n", cfg.Listen)
	if cfg.MetricsListen != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", cfg.MetricsListen)
	}
	if !*withCtrl {
		return nameserver.Run(ctx, cfg)
	}
	ccfg.Logger = logger.With("component", "controller")
	c, err := controller.New(ccfg)
	if err != nil {
		return err
	}
	// One endpoint for both: the name server's serves the controller's
	// series too.
	cfg.MetricsAlso = append(cfg.MetricsAlso, c.Collector())
	fmt.Fprintf(stdout, "controller %d of %v listening on %s\n", ccfg.ID, ccfg.Peers, ccfg.Peers[ccfg.ID-1])
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return nameserver.Run(gctx, cfg) })
	g.Go(func() error { return c.Run(gctx) })
	return g.Wait()
}

func runController(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := controller.DefaultConfig()
	fs := newFlagSet("controller", "controller --id N --peers a,b,c", stderr)
	cfg.AddFlags(fs, "")
	logger, err := parseNodeFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.MetricsProcess = true
	if err := cfg.Validate(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "controller %d of %v listening on %s\n", cfg.ID, cfg.Peers, cfg.Peers[cfg.ID-1])
	if cfg.MetricsListen != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", cfg.MetricsListen)
	}
	return controller.Run(ctx, cfg)
}
