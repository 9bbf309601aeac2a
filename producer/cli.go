package producer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
)

// cliFlags are the flags of `brokerlab produce` that do not bind a Config
// field directly.
type cliFlags struct {
	size        string
	acks        string
	compression string
	style       string
	duration    time.Duration
	partitions  int
	replication int
}

// RunCLI runs `brokerlab produce` with args (without the command name):
// it produces until --count messages or --duration, or until ctx ends, and
// prints a summary to stdout. Bad flags return an error wrapping ErrUsage
// after the flag set printed the details to stderr; -h returns flag.ErrHelp.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	var f cliFlags
	cmd := discovery.Command{Name: "produce", ErrUsage: ErrUsage, Usage: []string{
		"Usage: brokerlab produce (--bootstrap host:port | --nameservers a,b) --topic T [--rate N] [--size 1KiB] [--count N | --duration D] [--acks all]",
		"\nWrites an open-loop schedule of messages and prints sent, acked, failed and latency from each message's intended send time.",
	}}
	log, d, err := cmd.Open(args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&cfg.Topic, "topic", "", "topic to write (required)")
		fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "messages per second, open loop; 0 = as fast as --window allows (closed loop)")
		fs.IntVar(&cfg.Window, "window", cfg.Window, "outstanding messages in closed-loop mode (--rate 0)")
		fs.StringVar(&f.size, "size", "1KiB", "message value size (B, KiB, MiB, KB, MB)")
		fs.Int64Var(&cfg.Count, "count", 0, "stop after this many messages (0: until --duration or interrupted)")
		fs.DurationVar(&f.duration, "duration", 0, "stop scheduling after this long (0: until --count or interrupted)")
		fs.StringVar(&f.acks, "acks", "all", "acks: all (-1), 1 or 0")
		fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "most messages per produce request")
		fs.DurationVar(&cfg.Linger, "linger", cfg.Linger, "wait this long for a batch to fill")
		fs.IntVar(&cfg.Retries, "retries", -1, "retries of a failed batch (default: 2147483647 Kafka style, 2 RocketMQ style)")
		fs.DurationVar(&cfg.RetryBackoff, "retry-backoff", cfg.RetryBackoff, "pause before a retry (Kafka style)")
		fs.DurationVar(&cfg.RequestTimeout, "timeout", 0, "request timeout (default: 30s Kafka style, 3s RocketMQ style)")
		fs.DurationVar(&cfg.DrainTimeout, "drain", 10*time.Second, "after the schedule stops, wait this long for outstanding messages")
		fs.StringVar(&f.compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
		fs.StringVar(&f.style, "style", "", "partitioning and retries: kafka or rocketmq (default: rocketmq with --nameservers)")
		fs.BoolVar(&cfg.Keys, "keys", false, "give messages keys and partition by key hash")
		fs.Func("id", "producer id written into every message (default 0)", func(s string) error {
			v, err := strconv.ParseInt(s, 10, 32)
			cfg.ProducerID = int32(v)
			return err
		})
		fs.IntVar(&f.partitions, "create", 0, "create the topic with this many partitions when it does not exist")
		fs.IntVar(&f.replication, "replication", 1, "replication factor of a topic made by --create")
	}, func() error { return f.apply(&cfg, cmd.Discovery) })
	if err != nil {
		return err
	}
	defer d.Close()
	cfg.Logger, cfg.Discovery = log, d
	if f.partitions > 0 {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := discovery.CreateTopic(cctx, d, cfg.Topic, int32(f.partitions), int16(f.replication))
		cancel()
		if err != nil {
			return err
		}
	}
	p, err := New(cfg)
	if err != nil {
		return err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if f.duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, f.duration)
	}
	defer cancel()
	sum := newSummary()
	start := time.Now()
	if err := p.Run(runCtx, sum.add); err != nil {
		return err
	}
	sum.print(stdout, p.Stats(), time.Since(start), cfg.MessageSize)
	return nil
}

// apply checks the flags that need parsing and fills cfg.
func (f *cliFlags) apply(cfg *Config, disc discovery.FlagConfig) error {
	if cfg.Topic == "" {
		return errors.New("--topic is required")
	}
	size, err := ParseSize(f.size)
	if err != nil {
		return err
	}
	cfg.MessageSize = int(size)
	switch strings.ToLower(f.acks) {
	case "all", "-1":
		cfg.Acks = -1
	case "1", "leader":
		cfg.Acks = 1
	case "0", "none":
		cfg.Acks = 0
	default:
		return fmt.Errorf("bad --acks %q (all, 1, 0)", f.acks)
	}
	if cfg.Compression, err = ParseCompression(f.compression); err != nil {
		return err
	}
	style := Style(f.style)
	if style != "" && style != StyleKafka && style != StyleRocketMQ {
		return fmt.Errorf("bad --style %q (kafka, rocketmq)", f.style)
	}
	if style == "" {
		style = StyleKafka
		if disc.UsesNameServers() {
			style = StyleRocketMQ
		}
	}
	// Style defaults for what the user left unset.
	base := DefaultConfig()
	if style == StyleRocketMQ {
		base = DefaultRocketMQConfig()
	}
	cfg.Style = style
	cfg.DeliveryTimeout = base.DeliveryTimeout
	if cfg.Retries < 0 {
		cfg.Retries = base.Retries
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = base.RequestTimeout
	}
	if f.partitions < 0 || f.replication <= 0 || f.replication > 32767 {
		return errors.New("--create and --replication must be positive")
	}
	return nil
}

// ParseSize parses a byte size: a number with an optional unit B, KiB, MiB,
// GiB (binary) or KB, MB, GB (decimal).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<40)/mult {
		return 0, fmt.Errorf("bad size %q (e.g. 512, 1KiB, 4MiB)", s)
	}
	return v * mult, nil
}

// ParseCompression parses a codec name.
func ParseCompression(s string) (kafka.Compression, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (none, gzip, snappy, lz4, zstd)", s)
}

// summary accumulates the CLI's latency histograms, in microseconds.
type summary struct {
	latency *hdrhistogram.Histogram // done - intended, acked messages
	delay   *hdrhistogram.Histogram // sent - intended, sent messages
	errs    map[string]int
}

func newSummary() *summary {
	return &summary{
		latency: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3),
		delay:   hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3),
		errs:    map[string]int{},
	}
}

// add is the producer's sink: Run calls it from one goroutine at a time.
func (s *summary) add(r history.Send) {
	if r.Outcome == history.Acked {
		_ = s.latency.RecordValue(max(1, r.Done.Sub(r.Intended).Microseconds()))
	} else if len(s.errs) < 20 || s.errs[r.Err] > 0 {
		s.errs[r.Err]++
	}
	if !r.Sent.IsZero() {
		_ = s.delay.RecordValue(max(1, r.Sent.Sub(r.Intended).Microseconds()))
	}
}

func (s *summary) print(w io.Writer, st Stats, elapsed time.Duration, size int) {
	secs := max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "scheduled %d  sent %d  acked %d  failed %d  unknown %d  retries %d  requests %d\n",
		st.Scheduled, st.Sent, st.Acked, st.Failed, st.Unknown, st.Retries, st.Requests)
	fmt.Fprintf(w, "elapsed %.2fs  acked %.1f msg/s  %.2f MB/s\n", elapsed.Seconds(), float64(st.Acked)/secs, float64(st.Acked)*float64(size)/secs/1e6)
	pr := func(name string, h *hdrhistogram.Histogram) {
		if h.TotalCount() == 0 {
			fmt.Fprintf(w, "%s: no samples\n", name)
			return
		}
		ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
		fmt.Fprintf(w, "%s (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
			name, ms(50), ms(90), ms(99), ms(99.9), float64(h.Max())/1000)
	}
	pr("latency from intended send", s.latency)
	pr("send delay (sent - intended)", s.delay)
	for e, n := range s.errs {
		fmt.Fprintf(w, "error x%d: %s\n", n, e)
	}
}
