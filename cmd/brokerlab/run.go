package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/brokerlab/brokerlab/docker" // docker runtime drivers
	_ "github.com/brokerlab/brokerlab/gossip" // gossip, gossip-ring (brokerlab broker only)
	"github.com/brokerlab/brokerlab/internal/memlimit"
	"github.com/brokerlab/brokerlab/scale"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	_ "github.com/brokerlab/brokerlab/scenarios/external"  // kafka-external
	_ "github.com/brokerlab/brokerlab/scenarios/inprocess" // coordinator and nameserver
	_ "github.com/brokerlab/brokerlab/scenarios/jetstream" // NATS JetStream reference
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	_ "github.com/brokerlab/brokerlab/swarm" // swarm runtime drivers
)

func init() {
	extraCommands = append(extraCommands,
		command{"run", "run a scenario through every topology and write result.json, report.md, report.html", runScenario},
		command{"report", "re-render report.md and report.html from DIR/result.json", runReport},
		command{"compare", "print a side-by-side table of several result.json files", runCompare},
	)
}

func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run [flags] SCENARIO.yaml", stderr)
	out := fs.String("out", "", "output directory (default results/<scenario>-<time>)")
	runtime := fs.String("runtime", "", "override the scenario's runtime: inprocess, docker or swarm")
	only := fs.String("topologies", "", "comma-separated subset of the scenario's topologies to run")
	bootstrap := fs.String("bootstrap", "", "host:port,... of the cluster for the kafka-external topology")
	keep := fs.Bool("keep-data", false, "keep node data directories under OUT/data")
	logLevel := fs.String("log-level", "error", "log level of the nodes: debug, info, warn, error")
	quiet := fs.Bool("quiet", false, "no live progress line")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the whole run (runner and, in-process, every node) to this file")
	hist := fs.String("history", scenarios.HistoryAuto, "where each run's history goes: auto (memory when the rate x duration estimate fits -history-memory), memory, or file (streamed to OUT/history-*.blh)")
	heapProfiles := fs.Bool("heap-profiles", false, "write heap profiles OUT/heap-<topology>-<step>-{sending,verified}.pprof at 90% of sending and after the verification read, with the cluster up")
	histMem := fs.String("history-memory", "512MiB", "memory budget of an in-memory history (auto mode)")
	fsync := fs.String("fsync", "", "override the scenario's cluster.fsync: never, interval or always (the output directory name says which)")
	repeat := fs.Int("repeat", 0, "run every topology N times, interleaved, a fresh cluster each time (overrides the scenario's repeat)")
	seed := fs.String("seed", "", "seed of the scenario's random fault schedule (overrides random.seed)")
	memLimit := fs.String("memory-limit", scenario.FormatSize(memlimit.DefaultLimit), "soft budget for the process's Go memory (brokers, clients and runner in-process): the collector runs earlier to stay under it while the live heap plus a quarter fits, the limit follows a larger heap up to 1.25 x the budget, and beyond that Go's default pacing applies; off for none. GOMEMLIMIT, when set, wins over the default. Scale sweeps keep Go's default pacing")
	if err := parseFlags(fs, reorderArgs(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "run needs exactly one scenario file")
		fs.Usage()
		return errUsage
	}
	if _, err := memlimit.ParseLimit(*memLimit); err != nil { // scale sweeps too
		fmt.Fprintf(stderr, "--memory-limit: %v\n", err)
		return errUsage
	}
	if data, err := os.ReadFile(fs.Arg(0)); err == nil && scale.IsSweep(data) {
		return runScaleSweep(ctx, fs.Arg(0), data, *out, *only, *logLevel, *quiet, stdout, stderr)
	}
	spec, err := scenario.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	switch *fsync {
	case "":
	case scenario.FsyncNever, scenario.FsyncInterval, scenario.FsyncAlways:
		spec.Cluster.Fsync = *fsync
		spec.Name += "-fsync-" + *fsync
	default:
		fmt.Fprintf(stderr, "--fsync %q: want never, interval or always\n", *fsync)
		return errUsage
	}
	if err := overrideRepeat(&spec, *repeat, *seed); err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if *runtime != "" && *runtime != scenario.RuntimeInProcess && *runtime != scenario.RuntimeDocker && *runtime != scenario.RuntimeSwarm {
		fmt.Fprintf(stderr, "--runtime %q: want inprocess, docker or swarm\n", *runtime)
		return errUsage
	}
	gov, err := memoryGovernor(fs, *memLimit, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "--memory-limit: %v\n", err)
		return errUsage
	}
	if gov != nil {
		gov.Start()
		defer func() {
			if _, lifts := gov.Limit(); lifts > 0 {
				fmt.Fprintf(stdout, "memory limit: lifted %d times (the live heap needed more than %s)\n", lifts, *memLimit)
			}
			_ = gov.Close()
		}()
	}
	budget, err := scenario.ParseSize(*histMem)
	if err != nil {
		fmt.Fprintf(stderr, "--history-memory: %v\n", err)
		return errUsage
	}
	opts := scenarios.RunOptions{Out: *out, Runtime: *runtime, KeepData: *keep, History: *hist, HistoryMemory: budget, HeapProfiles: *heapProfiles}
	if opts.Out == "" {
		opts.Out = filepath.Join("results", spec.Name+"-"+time.Now().Format("20060102-150405"))
	}
	if *only != "" {
		for _, t := range strings.Split(*only, ",") {
			if !spec.Has(t) {
				return fmt.Errorf("topology %q is not in %s (it has %v)", t, fs.Arg(0), spec.Topologies)
			}
			opts.Topologies = append(opts.Topologies, t)
		}
	}
	if *bootstrap != "" {
		opts.Bootstrap = strings.Split(*bootstrap, ",")
	} else if len(spec.External.Bootstrap) > 0 {
		opts.Bootstrap = spec.External.Bootstrap
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	opts.Logger = logger
	if !*quiet {
		opts.Progress = stderr
	}
	fmt.Fprintf(stdout, "running %s (%s) -> %s\n", spec.Name, spec.File, opts.Out)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	res, err := scenarios.RunScenario(ctx, spec, opts)
	if len(res.Topologies) > 0 {
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, report.Compare([]report.Result{res}))
		fmt.Fprintf(stdout, "\nwrote %s, %s, %s\n", filepath.Join(opts.Out, "result.json"), filepath.Join(opts.Out, "report.md"), filepath.Join(opts.Out, "report.html"))
	}
	if err != nil {
		return err
	}
	for _, t := range res.Topologies {
		if t.Error != "" {
			return fmt.Errorf("topology %s failed: %s", t.Topology, t.Error)
		}
	}
	return nil
}

// memoryGovernor returns the governor of -memory-limit, or nil for none:
// "off", or GOMEMLIMIT set and the flag not given (the user's own limit
// stays). It says which on stdout.
func memoryGovernor(fs *flag.FlagSet, value string, stdout, stderr io.Writer) (*memlimit.Governor, error) {
	limit, err := memlimit.ParseLimit(value)
	if err != nil {
		return nil, err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "memory-limit" })
	if env := os.Getenv("GOMEMLIMIT"); env != "" && !given {
		fmt.Fprintf(stdout, "memory limit: GOMEMLIMIT=%s (from the environment)\n", env)
		return nil, nil
	}
	if limit == 0 {
		fmt.Fprintln(stdout, "memory limit: none (Go's default pacing)")
		return nil, nil
	}
	cfg := memlimit.DefaultConfig()
	cfg.Limit = limit
	// Lifting and re-applying the budget is worth a line at any log level.
	g, err := memlimit.New(cfg, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "memory limit: %s soft (-memory-limit; follows a live heap that needs more up to %s, then lifted)\n",
		scenario.FormatSize(limit), scenario.FormatSize(int64(float64(limit)*memlimit.Stretch)))
	return g, nil
}

// reorderArgs lets flags follow the scenario file (run FILE --out DIR).
func reorderArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, pos...)
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "report [-recheck] DIR", stderr)
	recheck := fs.Bool("recheck", false, "first re-analyse the streamed histories DIR/history-*.blh (checker included) and update result.json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "report needs the directory holding result.json")
		return errUsage
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(filepath.Join(dir, "result.json")); err != nil {
		return fmt.Errorf("no result.json in %s: %w", dir, err)
	}
	if *recheck {
		n, err := report.Recheck(dir, analysis.DefaultAnalysisConfig())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-analysed %d streamed histories\n", n)
	} else if err := report.Rerender(dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(dir, "report.md"), filepath.Join(dir, "report.html"))
	return nil
}

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", "compare A/result.json B/result.json ...", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "compare needs at least one result.json (or a directory holding one)")
		return errUsage
	}
	var results []report.Result
	for _, p := range fs.Args() {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, "result.json")
		}
		r, err := report.ReadResult(p)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Fprint(stdout, report.Compare(results))
	return nil
}

// startCPUProfile profiles the process into file until the returned stop.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// runScaleSweep runs a `data_plane: none` scenario: control-plane-only
// brokers at every cluster size of the sweep (package scale).
func runScaleSweep(ctx context.Context, path string, data []byte, out, only, logLevel string, quiet bool, stdout, stderr io.Writer) error {
	sw, err := scale.ParseSweep(path, data)
	if err != nil {
		return err
	}
	o := scale.SweepOptions{Dir: out}
	if o.Dir == "" {
		o.Dir = filepath.Join("results", sw.Name+"-"+time.Now().Format("20060102-150405"))
	}
	if only != "" {
		for _, t := range strings.Split(only, ",") {
			if !slices.Contains(sw.Topologies, t) {
				return fmt.Errorf("topology %q is not in %s (it has %v)", t, path, sw.Topologies)
			}
			o.Topologies = append(o.Topologies, t)
		}
	}
	if o.Logger, err = newLogger(stderr, logLevel); err != nil {
		return err
	}
	if !quiet {
		o.Progress = stderr
	}
	fmt.Fprintf(stdout, "running %s (%s, control planes only) -> %s\n", sw.Name, path, o.Dir)
	res, err := scale.RunSweep(ctx, sw, o)
	if werr := scale.WriteAll(o.Dir, res); werr != nil {
		return errors.Join(err, werr)
	}
	_ = os.RemoveAll(filepath.Join(o.Dir, "data"))
	fmt.Fprint(stdout, scale.RenderMarkdown(res))
	return err
}

// overrideRepeat applies --repeat and --seed to a loaded scenario.
func overrideRepeat(spec *scenario.Spec, repeat int, seed string) error {
	if repeat != 0 {
		spec.Repeat = repeat
	}
	if seed != "" {
		if spec.Random == nil {
			return fmt.Errorf("--seed: %s has no random fault schedule", spec.File)
		}
		n, err := strconv.ParseUint(seed, 10, 64)
		if err != nil {
			return fmt.Errorf("--seed %q: want a non-negative integer", seed)
		}
		r := *spec.Random
		r.Seed = n
		spec.Random = &r
	}
	return spec.Validate()
}
