package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/logs"
)

// Errors of this package, wrapped with %w.
var (
	// ErrNoRoute: the topic's route could not be learned before the run
	// ended.
	ErrNoRoute = errors.New("consumer: no route for the topic")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("consumer: already run")
	// ErrUsage: bad command-line flags (RunCLI has printed the details).
	ErrUsage = errors.New("consumer: usage error")
)

// Config configures a consumer.
type Config struct {
	// Discovery finds where partitions can be read; required. The
	// consumer does not close it.
	Discovery discovery.Discovery `yaml:"-" json:"-"`
	// Topic to read; required.
	Topic string `yaml:"topic" json:"topic"`
	// ConsumerID goes into every Receive record.
	ConsumerID int `yaml:"consumer_id" json:"consumer_id"`
	// Name identifies the consumer in route Changes; empty means
	// "consumer-<ConsumerID>".
	Name string `yaml:"name" json:"name"`
	// Partitions to read; nil reads every partition of the topic.
	Partitions []int32 `yaml:"partitions" json:"partitions"`
	// FromEnd starts each partition at its end instead of offset 0.
	FromEnd bool `yaml:"from_end" json:"from_end"`

	// MaxWait, MinBytes and MaxBytes are the Fetch long-poll settings
	// (fetch.max.wait.ms 500, fetch.min.bytes 1, max.partition.fetch.bytes
	// 1 MiB).
	MaxWait  time.Duration `yaml:"max_wait" json:"max_wait"`
	MinBytes int32         `yaml:"min_bytes" json:"min_bytes"`
	MaxBytes int32         `yaml:"max_bytes" json:"max_bytes"`
	// RetryBackoff is the pause after a failed fetch.
	RetryBackoff time.Duration `yaml:"retry_backoff" json:"retry_backoff"`
	// RequestTimeout bounds one fetch beyond MaxWait (request.timeout.ms).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`

	// OnRoute, when set, is called when a partition's fetches go to a new
	// address (and on its first fetch). Called from partition goroutines,
	// concurrently; it must return quickly.
	OnRoute func(discovery.Change) `yaml:"-" json:"-"`
	// OnRecord, when set, sees every fetched record, with or without the
	// history headers, from partition goroutines, concurrently.
	OnRecord func(partition int32, r kclient.Record) `yaml:"-" json:"-"`
	// Dial opens broker connections; nil uses net.Dialer.
	Dial kclient.DialFunc `yaml:"-" json:"-"`
	// Logger receives the consumer's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultConfig returns a Kafka consumer's defaults; Discovery and Topic are
// still to be set.
func DefaultConfig() Config {
	return Config{
		MaxWait:        500 * time.Millisecond,
		MinBytes:       1,
		MaxBytes:       1 << 20,
		RetryBackoff:   100 * time.Millisecond,
		RequestTimeout: 30 * time.Second,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Discovery == nil:
		return errors.New("consumer: discovery is required")
	case c.Topic == "":
		return errors.New("consumer: topic is required")
	case c.MaxWait <= 0:
		return errors.New("consumer: max wait must be positive")
	case c.MinBytes < 0:
		return errors.New("consumer: min bytes must be >= 0")
	case c.MaxBytes <= 0:
		return errors.New("consumer: max bytes must be positive")
	case c.RetryBackoff < 0:
		return errors.New("consumer: retry backoff must be >= 0")
	case c.RequestTimeout <= 0:
		return errors.New("consumer: request timeout must be positive")
	}
	for _, p := range c.Partitions {
		if p < 0 {
			return fmt.Errorf("consumer: partition %d is negative", p)
		}
	}
	return nil
}

// Stats are a consumer's counters.
type Stats struct {
	Received    int64 `json:"received"`     // records with history headers
	Foreign     int64 `json:"foreign"`      // records without them (not recorded)
	Fetches     int64 `json:"fetches"`      // successful fetches
	FetchErrors int64 `json:"fetch_errors"` // failed fetches
	Resets      int64 `json:"resets"`       // positions moved after OFFSET_OUT_OF_RANGE
}

// Progress is one partition's reading position.
type Progress struct {
	Partition int32 `json:"partition"`
	// Position is the next offset to read.
	Position int64 `json:"position"`
	// HighWatermark is the one reported by the last successful fetch, -1
	// before it.
	HighWatermark int64 `json:"high_watermark"`
	// FetchSent is when the last successful fetch was sent; its high
	// watermark is at least the partition's high watermark at that time.
	FetchSent time.Time `json:"fetch_sent"`
	// Reader is the address the last successful fetch went to.
	Reader string `json:"reader"`
	// LastErr is the last fetch error since the last success, if any.
	LastErr string `json:"last_err,omitempty"`
}

// CaughtUp reports whether the position has reached the high watermark.
func (p Progress) CaughtUp() bool { return p.HighWatermark >= 0 && p.Position >= p.HighWatermark }

// Consumer reads partitions from the start and records every message as a
// history.Receive.
type Consumer struct {
	cfg Config
	log *slog.Logger
	ran atomic.Bool

	received, foreign, fetches, fetchErrors, resets atomic.Int64

	sink   func(history.Receive)
	sinkMu sync.Mutex // serialises sink calls

	mu       sync.Mutex // guards progress and changed
	progress map[int32]*Progress
	changed  chan struct{} // closed and replaced on every progress update
}

// New validates cfg and returns a consumer.
func New(cfg Config) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "consumer-" + strconv.Itoa(cfg.ConsumerID)
	}
	log := logs.OrDiscard(cfg.Logger)
	return &Consumer{
		cfg:      cfg,
		log:      log.With("consumer", cfg.Name, "topic", cfg.Topic),
		progress: make(map[int32]*Progress),
		changed:  make(chan struct{}),
	}, nil
}

// Stats returns the counters so far. Safe to call while Run runs.
func (c *Consumer) Stats() Stats {
	return Stats{
		Received: c.received.Load(), Foreign: c.foreign.Load(), Fetches: c.fetches.Load(),
		FetchErrors: c.fetchErrors.Load(), Resets: c.resets.Load(),
	}
}

// Progress returns every partition's position, by partition. Empty until
// Run has learned the partitions.
func (c *Consumer) Progress() []Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Progress, 0, len(c.progress))
	for _, p := range c.progress {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Progress) int { return int(a.Partition - b.Partition) })
	return out
}

// Lag returns the sum over partitions of high watermark minus position, as
// of each partition's last successful fetch; partitions never fetched count
// as 0.
func (c *Consumer) Lag() int64 {
	var lag int64
	for _, p := range c.Progress() {
		if p.HighWatermark > p.Position {
			lag += p.HighWatermark - p.Position
		}
	}
	return lag
}

// CaughtUp reports whether every partition has been fetched by a request
// sent after since and has read up to the high watermark that request
// reported. A runner stops its producers, notes the time, and waits for
// CaughtUp(that time) to be sure everything acknowledged before was read.
func (c *Consumer) CaughtUp(since time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caughtUpLocked(since)
}

// caughtUpLocked is CaughtUp. Lock should be held.
func (c *Consumer) caughtUpLocked(since time.Time) bool {
	if len(c.progress) == 0 {
		return false
	}
	for _, p := range c.progress {
		if p.FetchSent.Before(since) || !p.CaughtUp() {
			return false
		}
	}
	return true
}

// WaitCaughtUp waits until CaughtUp(since) or ctx ends (its error then).
// A partition nobody can serve never catches up: bound ctx by a drain
// timeout.
func (c *Consumer) WaitCaughtUp(ctx context.Context, since time.Time) error {
	for {
		c.mu.Lock()
		ok := c.caughtUpLocked(since)
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// LogReaches reports whether the log of partition, at the reader its route
// names first, extends to offset: a consumer fetch at offset is answered
// OFFSET_OUT_OF_RANGE only when the log ends before it, whatever the high
// watermark. A runner uses it to tell a log that ends before offsets that
// were acknowledged (they are gone) from a high watermark that lags a log
// which holds them (they are there, not yet readable).
func (c *Consumer) LogReaches(ctx context.Context, partition int32, offset int64) (bool, error) {
	route, err := c.cfg.Discovery.Route(ctx, c.cfg.Topic)
	if err != nil {
		return false, err
	}
	pp, ok := route.Partition(partition)
	if !ok || len(pp.Readers) == 0 {
		return false, fmt.Errorf("consumer: partition %d has no reader in the route", partition)
	}
	kc := kclient.New(kclient.Config{ClientID: c.cfg.Name, Dial: c.cfg.Dial, Logger: c.log,
		DialTimeout: min(c.cfg.RequestTimeout, kclient.DefaultConfig().DialTimeout)})
	defer kc.Close()
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	_, err = kc.Fetch(rctx, pp.Readers[0], kclient.FetchRequest{Topic: c.cfg.Topic, Partition: partition, Offset: offset,
		MaxWait: time.Millisecond, MinBytes: 0, MaxBytes: 1})
	switch {
	case errors.Is(err, kafka.OffsetOutOfRange):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// update changes a partition's progress and wakes waiters.
func (c *Consumer) update(part int32, f func(*Progress)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.progress[part])
	close(c.changed)
	c.changed = make(chan struct{})
}

// Run reads the partitions until ctx ends, giving every message that
// carries the history headers to sink (from one goroutine at a time, in
// offset order per partition). It returns nil when ctx ends, or an error
// when the topic's route could not be learned.
func (c *Consumer) Run(ctx context.Context, sink func(history.Receive)) error {
	if !c.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	c.sink = sink
	route, err := c.firstRoute(ctx)
	if err != nil {
		return err
	}
	parts := c.cfg.Partitions
	if parts == nil {
		for _, p := range route.Partitions {
			parts = append(parts, p.ID)
		}
	}
	c.mu.Lock()
	for _, p := range parts {
		c.progress[p] = &Progress{Partition: p, HighWatermark: -1}
	}
	c.mu.Unlock()
	c.log.Info("consuming", "partitions", len(parts))
	var wg sync.WaitGroup
	for _, p := range parts {
		r := &reader{c: c, part: p}
		wg.Go(func() { r.run(ctx) })
	}
	wg.Wait()
	return nil
}

// firstRoute waits for the topic's route.
func (c *Consumer) firstRoute(ctx context.Context) (discovery.Route, error) {
	r, err := discovery.FirstRoute(ctx, c.cfg.Discovery, c.cfg.Topic, c.cfg.RetryBackoff, nil)
	if err != nil {
		return r, fmt.Errorf("%w %w", ErrNoRoute, err)
	}
	return r, nil
}

// reader is one partition's goroutine. It has its own connections, so a
// long-polling fetch never holds up another partition's.
type reader struct {
	c        *Consumer
	part     int32
	client   *kclient.Client
	pos      int64
	started  bool // pos is set
	lastAddr string
}

func (r *reader) run(ctx context.Context) {
	c := r.c
	r.client = kclient.New(kclient.Config{ClientID: c.cfg.Name, Dial: c.cfg.Dial, Logger: c.log,
		DialTimeout: min(c.cfg.RequestTimeout, kclient.DefaultConfig().DialTimeout)})
	defer r.client.Close()
	for ctx.Err() == nil {
		if err := r.fetchOnce(ctx); err != nil && ctx.Err() == nil {
			c.fetchErrors.Add(1)
			c.update(r.part, func(p *Progress) { p.LastErr = err.Error() })
			c.log.Debug("fetch failed", "partition", r.part, "offset", r.pos, "error", err)
			c.cfg.Discovery.Invalidate(c.cfg.Topic)
			r.backoff(ctx)
		}
	}
}

// fetchOnce reads once from the partition's preferred reader.
func (r *reader) fetchOnce(ctx context.Context) error {
	c := r.c
	route, err := c.cfg.Discovery.Route(ctx, c.cfg.Topic)
	if err != nil {
		return err
	}
	pp, ok := route.Partition(r.part)
	if !ok || len(pp.Readers) == 0 {
		return fmt.Errorf("consumer: partition %d has no reader in the route", r.part)
	}
	addr := pp.Readers[0]
	if !r.started {
		if err := r.start(ctx, addr); err != nil {
			return err
		}
	}
	sent := time.Now()
	r.noteRoute(addr, pp.LeaderEpoch, sent)
	rctx, cancel := context.WithTimeout(ctx, c.cfg.MaxWait+c.cfg.RequestTimeout)
	res, err := r.client.Fetch(rctx, addr, kclient.FetchRequest{
		Topic: c.cfg.Topic, Partition: r.part, Offset: r.pos,
		MaxWait: c.cfg.MaxWait, MinBytes: c.cfg.MinBytes, MaxBytes: c.cfg.MaxBytes,
	})
	cancel()
	if errors.Is(err, kafka.OffsetOutOfRange) {
		return r.reset(ctx, addr)
	}
	if err != nil {
		return err
	}
	received := time.Now()
	c.fetches.Add(1)
	for _, rec := range res.Records {
		r.deliver(rec, received)
		r.pos = rec.Offset + 1
	}
	c.update(r.part, func(p *Progress) {
		p.Position, p.HighWatermark, p.FetchSent, p.Reader, p.LastErr = r.pos, res.HighWatermark, sent, addr, ""
	})
	return nil
}

// start sets the first position: 0, or the end with FromEnd.
func (r *reader) start(ctx context.Context, addr string) error {
	if !r.c.cfg.FromEnd {
		r.started = true
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, r.c.cfg.RequestTimeout)
	defer cancel()
	end, err := r.client.ListOffsets(rctx, addr, r.c.cfg.Topic, r.part, kclient.Latest)
	if err != nil {
		return err
	}
	r.pos, r.started = end, true
	return nil
}

// reset moves a position the reader's log does not have into its range:
// past the end (the log was truncated, e.g. after an unclean election, or
// a slave is behind) to the end; before the start (retention) to the start.
func (r *reader) reset(ctx context.Context, addr string) error {
	c := r.c
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	end, err := r.client.ListOffsets(rctx, addr, c.cfg.Topic, r.part, kclient.Latest)
	if err != nil {
		return err
	}
	start, err := r.client.ListOffsets(rctx, addr, c.cfg.Topic, r.part, kclient.Earliest)
	if err != nil {
		return err
	}
	old := r.pos
	switch {
	case r.pos > end:
		r.pos = end
	case r.pos < start:
		r.pos = start
	default:
		return fmt.Errorf("consumer: offset %d out of range at %s, which has %d..%d", r.pos, addr, start, end)
	}
	c.resets.Add(1)
	c.log.Warn("position out of the log's range, moved", "partition", r.part, "addr", addr, "from", old, "to", r.pos)
	c.update(r.part, func(p *Progress) { p.Position = r.pos })
	return nil
}

// deliver records one fetched record.
func (r *reader) deliver(rec kclient.Record, received time.Time) {
	c := r.c
	if c.cfg.OnRecord != nil {
		c.cfg.OnRecord(r.part, rec)
	}
	producer, seq, intended, ok := history.ParseHeaders(func(key string) ([]byte, bool) {
		for _, h := range rec.Headers {
			if h.Key == key {
				return h.Value, true
			}
		}
		return nil, false
	})
	if !ok {
		c.foreign.Add(1)
		return
	}
	c.received.Add(1)
	if c.sink == nil {
		return
	}
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	c.sink(history.Receive{
		Producer: producer, Seq: seq, Partition: r.part, Offset: rec.Offset,
		Intended: intended, Received: received, Consumer: c.cfg.ConsumerID,
	})
}

// noteRoute reports the first fetch of the partition from a new address.
func (r *reader) noteRoute(addr string, epoch int32, at time.Time) {
	if addr == r.lastAddr {
		return
	}
	prev := r.lastAddr
	r.lastAddr = addr
	r.c.log.Debug("partition read from a new address", "partition", r.part, "addr", addr, "previous", prev)
	if r.c.cfg.OnRoute != nil {
		r.c.cfg.OnRoute(discovery.Change{
			Client: r.c.cfg.Name, Topic: r.c.cfg.Topic, Partition: r.part,
			Addr: addr, Previous: prev, LeaderEpoch: epoch, At: at,
		})
	}
}

func (r *reader) backoff(ctx context.Context) {
	if r.c.cfg.RetryBackoff <= 0 {
		return
	}
	t := time.NewTimer(r.c.cfg.RetryBackoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
