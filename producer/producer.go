package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	ErrNoRoute = errors.New("producer: no route for the topic")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("producer: already run")
	// ErrNoLeader: the partition has no leader in the route (retried).
	ErrNoLeader = errors.New("producer: partition has no leader")
	// ErrRunEnded: the run ended before the message's outcome was known.
	ErrRunEnded = errors.New("producer: run ended")
	// ErrDeliveryTimeout: the message outlived DeliveryTimeout.
	ErrDeliveryTimeout = errors.New("producer: delivery timeout expired")
	// ErrUsage: bad command-line flags (RunCLI has printed the details).
	ErrUsage = errors.New("producer: usage error")
)

// Stats are a producer's counters, in messages.
type Stats struct {
	Scheduled int64 `json:"scheduled"` // enqueued by the schedule
	Sent      int64 `json:"sent"`      // handed to the network at least once
	Acked     int64 `json:"acked"`
	Failed    int64 `json:"failed"`
	Unknown   int64 `json:"unknown"`
	Retries   int64 `json:"retries"`  // attempts after the first
	Requests  int64 `json:"requests"` // produce requests sent
	// Moved counts messages sent on to another partition (RocketMQ style:
	// a failed batch, or the queue of a group that became unusable). Only
	// these may break a partition's order.
	Moved int64 `json:"moved"`
}

// Producer writes an open-loop (or closed-loop) message schedule to a topic
// and records every message's outcome as a history.Send.
type Producer struct {
	cfg     Config
	log     *slog.Logger
	client  *kclient.Client
	payload []byte // values are windows into it
	ran     atomic.Bool

	scheduled, sent, acked, failed, unknown, retries, requests, moved atomic.Int64

	// Set by Run before any goroutine starts.
	sink        func(history.Send)
	sinkMu      sync.Mutex // serialises sink calls
	queues      []*queue
	outstanding atomic.Int64  // scheduled and not yet finished
	genEnded    atomic.Bool   // the schedule stopped
	allDone     chan struct{} // closed once genEnded and outstanding is 0
	doneOnce    sync.Once
	tokens      chan struct{} // closed-loop window, nil in open loop
}

// payloadSlack is how far message values are offset into the payload buffer,
// so that consecutive values differ.
const payloadSlack = 4096

// New validates cfg and returns a producer.
func New(cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Style == "" {
		cfg.Style = StyleKafka
	}
	if cfg.Name == "" {
		cfg.Name = "producer-" + strconv.Itoa(int(cfg.ProducerID))
	}
	log := logs.OrDiscard(cfg.Logger)
	log = log.With("producer", cfg.Name, "topic", cfg.Topic)
	// Letters from a seeded generator: compressible like text, different
	// per producer, identical across runs.
	rng := rand.New(rand.NewPCG(uint64(cfg.ProducerID), 0x6272))
	payload := make([]byte, cfg.MessageSize+payloadSlack)
	for i := range payload {
		payload[i] = 'a' + byte(rng.IntN(26))
	}
	return &Producer{
		cfg:     cfg,
		log:     log,
		payload: payload,
		client:  kclient.New(kclient.Config{ClientID: cfg.Name, Dial: cfg.Dial, Logger: log, DialTimeout: min(cfg.RequestTimeout, kclient.DefaultConfig().DialTimeout)}),
		allDone: make(chan struct{}),
	}, nil
}

// Stats returns the counters so far. Safe to call while Run runs.
func (p *Producer) Stats() Stats {
	return Stats{
		Scheduled: p.scheduled.Load(), Sent: p.sent.Load(), Acked: p.acked.Load(),
		Failed: p.failed.Load(), Unknown: p.unknown.Load(), Retries: p.retries.Load(),
		Moved:    p.moved.Load(),
		Requests: p.requests.Load(),
	}
}

// Run learns the topic's route, then schedules messages until Count is
// reached or ctx ends, and returns once every scheduled message has been
// given to sink exactly once: Acked, Failed, or Unknown for those still
// queued or in flight when the run ended (DrainTimeout after ctx ended).
// Messages never handed to the network are Unknown with Attempts 0.
// sink is called from one goroutine at a time. Run may be called once; it
// closes the producer's connections when it returns.
func (p *Producer) Run(ctx context.Context, sink func(history.Send)) error {
	if !p.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer p.client.Close()
	p.sink = sink
	route, err := p.firstRoute(ctx)
	if err != nil {
		return err
	}
	n := len(route.Partitions)
	p.queues = make([]*queue, n)
	for i := range p.queues {
		p.queues[i] = newQueue()
	}
	if p.cfg.Rate == 0 {
		p.tokens = make(chan struct{}, p.cfg.Window)
	}

	workCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	var wg sync.WaitGroup
	for i := range n {
		w := &worker{p: p, part: int32(i), q: p.queues[i]}
		wg.Go(func() { w.run(workCtx) })
	}
	p.log.Info("producing", "partitions", n, "rate", p.cfg.Rate, "acks", p.cfg.Acks, "style", p.cfg.Style)

	p.schedule(ctx, route)
	p.genEnded.Store(true)
	p.checkAllDone()

	p.awaitEnd(ctx)
	abort()
	wg.Wait()
	// Whatever is still queued was never sent, or is a batch a partition
	// goroutine put back when it stopped.
	for _, q := range p.queues {
		p.finishAll(q.drain(), history.Unknown, -1, ErrRunEnded)
	}
	return nil
}

// awaitEnd returns when every message is finished or the run must stop: at
// once when ctx ended and DrainTimeout is 0, else DrainTimeout after ctx ended.
func (p *Producer) awaitEnd(ctx context.Context) {
	ctxDone := ctx.Done()
	var drain <-chan time.Time
	if ctx.Err() != nil {
		if p.cfg.DrainTimeout == 0 {
			return
		}
		t := time.NewTimer(p.cfg.DrainTimeout)
		defer t.Stop()
		drain, ctxDone = t.C, nil
	}
	for {
		select {
		case <-p.allDone:
			return
		case <-drain:
			return
		case <-ctxDone:
			if p.cfg.DrainTimeout == 0 {
				return
			}
			t := time.NewTimer(p.cfg.DrainTimeout)
			defer t.Stop()
			drain, ctxDone = t.C, nil
		}
	}
}

// firstRoute waits for the topic's route (a Kafka producer's first send
// blocks on metadata the same way).
func (p *Producer) firstRoute(ctx context.Context) (discovery.Route, error) {
	r, err := discovery.FirstRoute(ctx, p.cfg.Discovery, p.cfg.Topic, p.cfg.RetryBackoff, func(err error) {
		p.log.Debug("waiting for the topic's route", "error", err)
	})
	if err != nil {
		return r, fmt.Errorf("%w %w", ErrNoRoute, err)
	}
	return r, nil
}

// schedule enqueues messages at their intended times until Count or ctx.
func (p *Producer) schedule(ctx context.Context, route discovery.Route) {
	pick := newPicker(p, route)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	var interval float64
	if p.cfg.Rate > 0 {
		interval = float64(time.Second) / p.cfg.Rate
	}
	for seq := int64(0); p.cfg.Count == 0 || seq < p.cfg.Count; seq++ {
		var intended time.Time
		if p.tokens != nil {
			select {
			case p.tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			intended = time.Now()
		} else {
			intended = start.Add(time.Duration(float64(seq) * interval))
			if d := time.Until(intended); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			} else if ctx.Err() != nil {
				return
			}
		}
		m := &message{seq: seq, intended: intended, enqueued: time.Now()}
		m.partition = pick.partition(ctx, m)
		p.scheduled.Add(1)
		p.outstanding.Add(1)
		p.queues[m.partition].push(m)
	}
}

// checkAllDone closes allDone once the schedule ended and nothing is
// outstanding.
func (p *Producer) checkAllDone() {
	if p.genEnded.Load() && p.outstanding.Load() == 0 {
		p.doneOnce.Do(func() { close(p.allDone) })
	}
}

// finish records the outcome of messages. offset is the first message's
// offset when Acked (-1 for acks=0).
func (p *Producer) finishAll(ms []*message, outcome history.Outcome, offset int64, err error) {
	if len(ms) == 0 {
		return
	}
	done := time.Now()
	p.sinkMu.Lock()
	for i, m := range ms {
		s := history.Send{
			Producer: p.cfg.ProducerID, Seq: m.seq, Partition: m.partition,
			Intended: m.intended, Sent: m.sent, Done: done,
			Outcome: outcome, Offset: -1, Attempts: m.attempts,
		}
		switch {
		case outcome == history.Acked && offset >= 0:
			s.Offset = offset + int64(i)
		case outcome != history.Acked && err != nil:
			s.Err = err.Error()
		}
		if p.sink != nil {
			p.sink(s)
		}
	}
	p.sinkMu.Unlock()
	switch outcome {
	case history.Acked:
		p.acked.Add(int64(len(ms)))
	case history.Failed:
		p.failed.Add(int64(len(ms)))
	default:
		p.unknown.Add(int64(len(ms)))
	}
	if p.tokens != nil {
		for range ms {
			<-p.tokens
		}
	}
	p.outstanding.Add(-int64(len(ms)))
	p.checkAllDone()
}

// value returns message seq's value: a window into the payload.
func (p *Producer) value(seq int64) []byte {
	off := int((seq * 31) % payloadSlack)
	return p.payload[off : off+p.cfg.MessageSize]
}

// record builds message m's record with the history headers.
func (p *Producer) record(m *message) kclient.Record {
	r := kclient.Record{
		Value: p.value(m.seq),
		Headers: []kclient.Header{
			{Key: history.HeaderProducer, Value: history.FormatInt(int64(p.cfg.ProducerID))},
			{Key: history.HeaderSeq, Value: history.FormatInt(m.seq)},
			{Key: history.HeaderIntended, Value: history.FormatInt(m.intended.UnixNano())},
		},
	}
	if p.cfg.Keys {
		r.Key = p.key(m.seq)
	}
	return r
}

// key is message seq's key.
func (p *Producer) key(seq int64) []byte {
	return []byte(strconv.Itoa(int(p.cfg.ProducerID)) + "-" + strconv.Itoa(int(seq%1024)))
}

// picker chooses a new message's partition.
type picker struct {
	p      *Producer
	n      int
	next   int
	parts  []int // 0..n-1 for the murmur2 balancer
	route  discovery.Route
	routed time.Time
	// writable caches route.Writable for routeReuse (RocketMQ style).
	writable []discovery.Partition
}

// routeReuse is how long the scheduler reuses a route and the fault
// avoidance verdicts before asking the discovery again (it caches too; this
// spares the lookups at high rates).
const routeReuse = 10 * time.Millisecond

func newPicker(p *Producer, r discovery.Route) *picker {
	pk := &picker{p: p, n: len(r.Partitions), route: r, routed: time.Now()}
	pk.parts = make([]int, pk.n)
	for i := range pk.parts {
		pk.parts[i] = i
	}
	return pk
}

func (pk *picker) partition(ctx context.Context, m *message) int32 {
	if pk.p.cfg.Style == StyleKafka {
		if pk.p.cfg.Keys {
			return int32(kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: pk.p.key(m.seq)}, pk.parts...))
		}
		i := pk.next % pk.n
		pk.next++
		return int32(i)
	}
	if pk.writable == nil || time.Since(pk.routed) > routeReuse {
		if r, err := pk.p.cfg.Discovery.Route(ctx, pk.p.cfg.Topic); err == nil && len(r.Partitions) == pk.n {
			pk.route = r
		}
		pk.writable = pk.route.Writable(pk.p.cfg.Discovery.Avoid)
		pk.routed = time.Now()
	}
	ws := pk.writable
	if len(ws) == 0 {
		i := pk.next % pk.n
		pk.next++
		return int32(i)
	}
	if pk.p.cfg.Keys {
		ids := make([]int, len(ws))
		for i, w := range ws {
			ids[i] = int(w.ID)
		}
		return int32(kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: pk.p.key(m.seq)}, ids...))
	}
	w := ws[pk.next%len(ws)]
	pk.next++
	return w.ID
}
