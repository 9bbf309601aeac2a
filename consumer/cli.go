package consumer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/history"
)

// cliFlags are the flags of `brokerlab consume` that do not bind a Config
// field directly.
type cliFlags struct {
	fromBeginning bool
	count         int64
	duration      time.Duration
	toEnd         bool
	quiet         bool
	partitions    string
}

// RunCLI runs `brokerlab consume` with args (without the command name): it
// prints every message (or, with --quiet, only the summary) until --count
// messages, --duration, --to-end, or ctx ends. Bad flags return an error
// wrapping ErrUsage after the details went to stderr; -h returns
// flag.ErrHelp.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	var f cliFlags
	cmd := discovery.Command{Name: "consume", ErrUsage: ErrUsage, Usage: []string{
		"Usage: brokerlab consume (--bootstrap host:port | --nameservers a,b) --topic T [--from-beginning] [--count N] [--to-end] [--quiet]",
		"\nPrints messages (partition, offset, brokerlab headers, key, value) and a summary with end-to-end latency.",
	}}
	log, d, err := cmd.Open(args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&cfg.Topic, "topic", "", "topic to read (required)")
		fs.BoolVar(&f.fromBeginning, "from-beginning", false, "read from offset 0 instead of the end of each partition")
		fs.Int64Var(&f.count, "count", 0, "stop after this many messages (0: no limit)")
		fs.DurationVar(&f.duration, "duration", 0, "stop after this long (0: no limit)")
		fs.BoolVar(&f.toEnd, "to-end", false, "stop once every partition is read up to its high watermark")
		fs.BoolVar(&f.quiet, "quiet", false, "print only the summary")
		fs.StringVar(&f.partitions, "partitions", "", "comma-separated partitions to read (default: all)")
		fs.DurationVar(&cfg.MaxWait, "max-wait", cfg.MaxWait, "fetch long-poll wait")
		fs.IntVar(&cfg.ConsumerID, "id", 0, "consumer id")
	}, func() error { return f.apply(&cfg) })
	if err != nil {
		return err
	}
	defer d.Close()
	cfg.Logger, cfg.Discovery = log, d

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, f.duration)
		defer c2()
	}
	out := &printer{w: stdout, quiet: f.quiet, limit: f.count, stop: cancel,
		e2e: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
	cfg.OnRecord = out.record
	c, err := New(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if f.toEnd {
		go func() {
			if c.WaitCaughtUp(runCtx, start) == nil {
				cancel()
			}
		}()
	}
	if err := c.Run(runCtx, out.receive); err != nil {
		return err
	}
	out.summary(c.Stats(), time.Since(start))
	return nil
}

// apply checks the flags that need parsing and fills cfg.
func (f *cliFlags) apply(cfg *Config) error {
	if cfg.Topic == "" {
		return errors.New("--topic is required")
	}
	if f.count < 0 || f.duration < 0 {
		return errors.New("--count and --duration must be >= 0")
	}
	cfg.FromEnd = !f.fromBeginning
	if f.partitions != "" {
		for _, s := range strings.Split(f.partitions, ",") {
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || v < 0 {
				return fmt.Errorf("bad partition %q in --partitions", s)
			}
			cfg.Partitions = append(cfg.Partitions, int32(v))
		}
	}
	return nil
}

// printer writes messages as partition goroutines deliver them.
type printer struct {
	w     io.Writer
	quiet bool
	limit int64
	stop  context.CancelFunc

	mu  sync.Mutex // guards the fields below and w
	n   int64
	e2e *hdrhistogram.Histogram // received - intended, microseconds
}

// record prints one record and stops the run at the limit.
func (p *printer) record(part int32, r kclient.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.n >= p.limit {
		return
	}
	p.n++
	if p.n == p.limit {
		p.stop()
	}
	if p.quiet {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\t%d", part, r.Offset)
	for _, h := range r.Headers {
		if strings.HasPrefix(h.Key, "bl-") {
			fmt.Fprintf(&b, "\t%s=%s", strings.TrimPrefix(h.Key, "bl-"), h.Value)
		}
	}
	if r.Key != nil {
		fmt.Fprintf(&b, "\tkey=%s", printable(r.Key, 32))
	}
	fmt.Fprintf(&b, "\t%s\n", printable(r.Value, 64))
	io.WriteString(p.w, b.String())
}

// receive records end-to-end latency of messages with history headers.
func (p *printer) receive(r history.Receive) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.e2e.RecordValue(max(1, r.Received.Sub(r.Intended).Microseconds()))
}

func (p *printer) summary(st Stats, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "received %d  with brokerlab headers %d  without %d  fetches %d  fetch errors %d  elapsed %.2fs\n",
		min(p.n, st.Received+st.Foreign), st.Received, st.Foreign, st.Fetches, st.FetchErrors, elapsed.Seconds())
	if h := p.e2e; h.TotalCount() > 0 {
		ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
		fmt.Fprintf(p.w, "end-to-end latency from intended send (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
			ms(50), ms(90), ms(99), ms(99.9), float64(h.Max())/1000)
	}
}

// printable returns at most n bytes of b as text, with non-printable bytes
// escaped.
func printable(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	s := string(b)
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\t\n\r") {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
}
