// Package metrics serves and reads the Prometheus metrics of brokerlab's
// nodes.
//
// Every node kind (broker, name server, coordinator plane, and any control
// plane added later) exposes one prometheus.Collector built from its own
// counters; this package only serves them and reads them back:
//
//   - NewRegistry gives each node its own registry, never the global
//     default one, so that several nodes in one process (the in-process
//     runtime) keep their series apart. WithProcess adds the Go runtime and
//     process collectors: only for a node that has its process to itself.
//   - Server serves one registry on /metrics at a listen address
//     (New/Start/Close).
//   - Scrape and Parse read the text format back into Samples, and
//     Cumulative turns counters of nodes that restart (and so reset) into
//     totals that never go down. The scenario runner reads control-plane
//     cost this way in every runtime.
//
// Adding a node kind: give the node's package a Collector (see
// broker.Broker.Collector or nameserver.Server.Collector: atomic counters
// read at scrape time, so the request path pays an atomic add and nothing
// else), name the series brokerlab_<kind>_..., with units in the name and
// _total on counters, and register it in the registry its runtime serves:
//
//	reg := metrics.NewRegistry(metrics.WithProcess())
//	reg.MustRegister(node.Collector())
//	srv, err := metrics.New(metrics.Config{Listen: "127.0.0.1:0"}, reg)
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	// curl http://<srv.Addr()>/metrics
package metrics
