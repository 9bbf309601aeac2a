package jetstream

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios"
)

// consumerRetry is the pause before a failed consumer creation is retried.
const consumerRetry = 250 * time.Millisecond

// stopTimeout bounds the wait for a stopped consumer to wind down.
const stopTimeout = 2 * time.Second

// consumer reads its partitions' streams from the first message, with one
// nats.go ordered consumer (an ephemeral pull consumer that recreates itself
// after the message it delivered last when it loses its server) per stream.
type consumer struct {
	d     *deployment
	cfg   scenarios.ConsumerConfig
	name  string
	parts []int32
	// delivered[i] is the stream sequence of the last message of parts[i]
	// delivered, history headers or not.
	delivered []atomic.Uint64
	running   atomic.Bool
}

func newConsumer(d *deployment, cfg scenarios.ConsumerConfig, parts []int32) *consumer {
	return &consumer{
		d:         d,
		cfg:       cfg,
		name:      "consumer-" + strconv.Itoa(cfg.ID),
		parts:     parts,
		delivered: make([]atomic.Uint64, len(parts)),
	}
}

// Run reads until ctx ends and returns nil then.
func (c *consumer) Run(ctx context.Context, sink func(history.Receive)) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("jetstream: %s already run", c.name)
	}
	tr := c.d.track(c.name)
	nc, err := c.d.connect(c.name, tr)
	if err != nil {
		return fmt.Errorf("jetstream: %s: %w", c.name, err)
	}
	defer c.d.release(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %s: %w", c.name, err)
	}
	var wg sync.WaitGroup
	for i, p := range c.parts {
		wg.Go(func() { c.read(ctx, js, i, p, tr.part(p), sink) })
	}
	wg.Wait()
	return nil
}

// read consumes one partition's stream until ctx ends.
func (c *consumer) read(ctx context.Context, js jetstream.JetStream, i int, p int32, act *activity, sink func(history.Receive)) {
	stream := StreamName(c.cfg.Topic, p)
	var cons jetstream.Consumer
	for cons == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		oc, err := js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		cancel()
		if err == nil {
			cons = oc
			break
		}
		c.d.log.Debug("ordered consumer", "consumer", c.name, "stream", stream, "error", err)
		if !sleepUntil(ctx, time.Now().Add(consumerRetry)) {
			return
		}
	}
	var stopped atomic.Bool // no sink calls once Run is ending
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if stopped.Load() {
			return
		}
		now := time.Now()
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		c.delivered[i].Store(meta.Sequence.Stream)
		h := m.Headers()
		prod, seq, intended, ok := history.ParseHeaders(func(k string) ([]byte, bool) {
			v := h.Get(k)
			return []byte(v), v != ""
		})
		if !ok {
			return
		}
		act.mark(now)
		sink(history.Receive{
			Producer:  prod,
			Seq:       seq,
			Partition: p,
			Offset:    int64(meta.Sequence.Stream),
			Intended:  intended,
			Received:  now,
			Consumer:  c.cfg.ID,
		})
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		c.d.log.Debug("consume", "consumer", c.name, "stream", stream, "error", err)
	}))
	if err != nil {
		c.d.log.Warn("consume", "consumer", c.name, "stream", stream, "error", err)
		return
	}
	<-ctx.Done()
	stopped.Store(true)
	cc.Stop()
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-cc.Closed():
	case <-t.C:
	}
}

// CaughtUp reports whether every partition has been read up to the last
// message its stream leader holds now.
func (c *consumer) CaughtUp(ctx context.Context) (bool, error) {
	for i, p := range c.parts {
		stream := StreamName(c.cfg.Topic, p)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := c.d.adminJS.Stream(cctx, stream)
		cancel()
		if err != nil {
			return false, fmt.Errorf("jetstream: stream %s: %w", stream, err)
		}
		if c.delivered[i].Load() < s.CachedInfo().State.LastSeq {
			return false, nil
		}
	}
	return true, nil
}
