package main

import (
	"context"
	"fmt"
	"io"

	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/nameserver"
)

func init() {
	extraCommands = append(extraCommands,
		command{"coordinator", "run one etcd member of a coordinator cluster (the ZooKeeper role)", runCoordinator},
		command{"nameserver", "run one RocketMQ-style name server", runNameServer},
	)
}

func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := coordinator.DefaultEtcdConfig()
	fs := newFlagSet("coordinator", "coordinator --data DIR --listen http://127.0.0.1:2379 [--peer-listen URL --name N --initial-cluster ...]", stderr)
	cfg.AddFlags(fs)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	fmt.Fprintf(stdout, "etcd member %s: clients on %v, data in %s\n", cfg.Name, cfg.ListenClientURLs, cfg.DataDir)
	return coordinator.RunEtcd(ctx, cfg)
}

func runNameServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := nameserver.DefaultConfig()
	fs := newFlagSet("nameserver", "nameserver --listen 127.0.0.1:9876", stderr)
	cfg.AddFlags(fs)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.MetricsProcess = true
	fmt.Fprintf(stdout, "name server listening on %s\n", cfg.Listen)
	if cfg.MetricsListen != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", cfg.MetricsListen)
	}
	return nameserver.Run(ctx, cfg)
}
