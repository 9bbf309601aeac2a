package swarm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// session is the start frame's JSON: one client and how it finds the
// cluster. Times in the configs are on the load generator's clock (the
// runner has shifted them).
type session struct {
	Producer    *scenarios.ProducerConfig    `json:"producer,omitempty"`
	Consumer    *scenarios.ConsumerConfig    `json:"consumer,omitempty"`
	Style       producer.Style               `json:"style"`
	Bootstrap   *discovery.BootstrapConfig   `json:"bootstrap,omitempty"`
	NameServers *discovery.NameServersConfig `json:"nameservers,omitempty"`
}

// ErrUsage is a bad loadgen command line.
var ErrUsage = errors.New("swarm: usage")

// RunLoadgenCLI is `brokerlab loadgen`: serve load generator sessions on
// --listen until ctx ends. The swarm runtime runs it as a service.
func RunLoadgenCLI(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, listen := serverFlags("loadgen", "0.0.0.0:7070", stderr)
	logger, err := parseServerFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return ServeLoadgen(ctx, ln, logger)
}

// serverFlags are the flags of a task the runner dials: --listen (default
// listen) and --log-level.
func serverFlags(name, listen string, stderr io.Writer) (fs *flag.FlagSet, addr *string) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr = fs.String("listen", listen, "address the runner dials")
	fs.String("log-level", "warn", "debug, info, warn or error")
	return fs, addr
}

// parseServerFlags parses args and returns a logger to stderr at the
// --log-level they set.
func parseServerFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (*slog.Logger, error) {
	if err := fs.Parse(args); err != nil {
		return nil, errors.Join(ErrUsage, err)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(fs.Lookup("log-level").Value.String())); err != nil {
		return nil, errors.Join(ErrUsage, err)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})), nil
}

// ServeLoadgen serves sessions on ln until ctx ends, one client per
// connection; it closes ln.
func ServeLoadgen(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	return serveConns(ctx, ln, func(ctx context.Context, conn net.Conn) {
		if err := serveSession(ctx, conn, logger); err != nil && ctx.Err() == nil {
			logger.Warn("session ended", "peer", conn.RemoteAddr().String(), "error", err)
		}
	})
}

// serveConns runs serve for every connection ln accepts, each in its own
// goroutine, until ctx ends; it closes ln and waits for them.
func serveConns(ctx context.Context, ln net.Listener, serve func(ctx context.Context, conn net.Conn)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() { serve(ctx, conn) })
	}
}

// frameWriter serialises frames from the client's goroutines and flushes
// them every few milliseconds (records) or at once (answers).
type frameWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (f *frameWriter) write(kind byte, body []byte, flush bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	f.err = writeFrame(f.w, kind, body)
	if f.err == nil && flush {
		f.err = f.w.Flush()
	}
}

func (f *frameWriter) flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = f.w.Flush()
	}
	return f.err
}

// serveSession runs one client: clock answers until start, then the
// client, answering the runner's questions, until the client ends.
func serveSession(ctx context.Context, conn net.Conn, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer conn.Close()
	context.AfterFunc(ctx, func() { conn.Close() })
	r := bufio.NewReaderSize(conn, 64<<10)
	fw := &frameWriter{w: bufio.NewWriterSize(conn, 256<<10)}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if fw.flush() != nil {
					cancel()
					return
				}
			}
		}
	}()
	var s session
	for {
		kind, body, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			return nil // a readiness check: clock, then gone
		}
		if err != nil {
			return err
		}
		if kind == frameClock {
			fw.write(frameNow, enc(nil).i64(time.Now().UnixNano()), true)
			continue
		}
		if kind != frameStart {
			return fmt.Errorf("%w: kind %d before start", errWire, kind)
		}
		if err := json.Unmarshal(body, &s); err != nil {
			return fmt.Errorf("%w: start: %v", errWire, err)
		}
		break
	}
	routes := &nodes.RouteLog{Forward: func(c discovery.Change) { fw.write(frameRoute, encodeRoute(c), false) }}
	clients := nodes.KafkaClients{
		NewDiscovery: func(name string, onChange func(discovery.Change)) (discovery.Discovery, error) {
			lg := logger.With("component", "discovery", "client", name)
			switch {
			case s.Bootstrap != nil:
				cfg := *s.Bootstrap
				cfg.OnChange, cfg.Logger = onChange, lg
				return discovery.NewBootstrap(cfg)
			case s.NameServers != nil:
				cfg := *s.NameServers
				cfg.OnChange, cfg.Logger = onChange, lg
				return discovery.NewNameServers(cfg)
			}
			return nil, errors.New("swarm: session names no discovery")
		},
		Style: s.Style, Routes: routes, Logger: logger,
	}
	done := func(err error) error {
		fw.write(frameDone, encodeResult(err == nil, err), true)
		return fw.flush()
	}
	switch {
	case s.Producer != nil:
		p, err := clients.NewProducer(*s.Producer)
		if err != nil {
			return done(err)
		}
		go func() { // the runner closing the connection aborts the producer
			for {
				if _, _, err := readFrame(r); err != nil {
					cancel()
					return
				}
			}
		}()
		return done(p.Run(ctx, func(m history.Send) { fw.write(frameSend, encodeSend(m), false) }))
	case s.Consumer != nil:
		c, err := clients.NewConsumer(*s.Consumer)
		if err != nil {
			return done(err)
		}
		return runConsumer(ctx, c, r, fw, done)
	}
	return done(errors.New("swarm: session names no client"))
}

// runConsumer runs c until the runner says stop, answering its questions;
// after the last receive it sends c's reads and done.
func runConsumer(ctx context.Context, c scenarios.Consumer, r *bufio.Reader, fw *frameWriter, done func(error) error) error {
	cctx, stopClient := context.WithCancel(ctx)
	defer stopClient()
	ended := make(chan error, 1)
	go func() {
		ended <- c.Run(cctx, func(m history.Receive) { fw.write(frameReceive, encodeReceive(m), false) })
	}()
	pr, _ := c.(scenarios.PartitionReader)
	sendReads := func() {
		var reads []analysis.PartitionRead
		if pr != nil {
			reads = pr.Reads()
		}
		b, _ := json.Marshal(reads)
		fw.write(frameReadsAns, b, true)
	}
	frames := make(chan [2]any)
	go func() {
		defer close(frames)
		for {
			kind, body, err := readFrame(r)
			if err != nil {
				return
			}
			select {
			case frames <- [2]any{kind, body}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case err := <-ended:
			if cctx.Err() != nil {
				err = nil // stopped by the runner
			}
			sendReads()
			return done(err)
		case f, ok := <-frames:
			if !ok {
				return errors.New("swarm: runner gone")
			}
			kind, body := f[0].(byte), f[1].([]byte)
			switch kind {
			case frameStop:
				stopClient()
			case frameCaught:
				qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				ok, err := c.CaughtUp(qctx)
				cancel()
				fw.write(frameCaughtUp, encodeResult(ok, err), true)
			case frameReads:
				sendReads()
			case frameReaches:
				p, o, err := decodeReaches(body)
				if err != nil {
					return err
				}
				ok, qerr := false, errors.New("the consumer cannot tell")
				if pr != nil {
					qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					ok, qerr = pr.LogReaches(qctx, p, o)
					cancel()
				}
				fw.write(frameReachAns, encodeResult(ok, qerr), true)
			case frameClock:
				fw.write(frameNow, enc(nil).i64(time.Now().UnixNano()), true)
			default:
				return fmt.Errorf("%w: kind %d", errWire, kind)
			}
		}
	}
}
