package producer

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/history"
)

// worker is one partition's goroutine: it batches the partition's queue and
// keeps one produce request in flight, so messages of a partition are written
// in queue order (Kafka with max.in.flight=1).
type worker struct {
	p        *Producer
	part     int32
	q        *queue
	lastAddr string // where the last request went
}

// run batches and sends until the producer is done or ctx (the abort) ends.
func (w *worker) run(ctx context.Context) {
	for {
		if !w.waitBatch(ctx) {
			return
		}
		batch := w.q.take(w.p.cfg.BatchSize, w.p.cfg.BatchBytes, w.p.cfg.MessageSize)
		if len(batch) > 0 {
			w.send(ctx, batch)
		}
	}
}

// waitBatch waits until a batch is ready: BatchSize messages queued, or the
// oldest has lingered Linger, or the schedule has ended (nothing more will
// fill the batch). It returns false when the worker should stop.
func (w *worker) waitBatch(ctx context.Context) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if ctx.Err() != nil {
			return false
		}
		n, oldest := w.q.state()
		var lingerC <-chan time.Time
		switch {
		case n >= w.p.cfg.BatchSize:
			return true
		case n > 0:
			wait := time.Until(oldest.Add(w.p.cfg.Linger))
			if wait <= 0 || w.p.genEnded.Load() {
				return true
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			lingerC = timer.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-w.p.allDone:
			return false
		case <-w.q.notify:
		case <-lingerC:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// send delivers one batch: attempts with retries until it is acked, fails for
// good, moves to another partition (RocketMQ style) or the run aborts.
func (w *worker) send(ctx context.Context, batch []*message) {
	p := w.p
	for len(batch) > 0 {
		if ctx.Err() != nil {
			w.q.pushFront(batch) // Run records them Unknown
			return
		}
		if batch = w.expire(batch); len(batch) == 0 {
			return
		}
		pp, ok := w.partition(ctx)
		usable := ok && pp.Leader != ""
		// RocketMQ steers a batch away from a partition without a leader,
		// or from an avoided group when another group is not avoided; when
		// every group is avoided it sends anyway (moving would only pass
		// the batch around the queues, sending nothing).
		if p.cfg.Style == StyleRocketMQ && (!usable && w.move(batch, pp.Group, false) ||
			usable && p.cfg.Discovery.Avoid(pp.Group) && w.move(batch, pp.Group, true)) {
			return
		}
		err := ErrNoLeader
		if usable {
			var offset int64
			if offset, err = w.attempt(ctx, pp, batch); err == nil {
				p.finishAll(batch, history.Acked, offset, nil)
				return
			}
		}
		if ctx.Err() != nil {
			continue // aborted while in flight
		}
		p.cfg.Discovery.Invalidate(p.cfg.Topic)
		// A Kafka producer waits for a leader within the delivery timeout;
		// RocketMQ counts a missing route as a failed try.
		if batch = w.settle(batch, err, usable || p.cfg.Style == StyleRocketMQ); len(batch) == 0 {
			return
		}
		if p.cfg.Style == StyleRocketMQ && w.move(batch, pp.Group, false) {
			return
		}
		w.backoff(ctx)
	}
}

// settle records err on every message of batch, gives up those that may not
// be retried, and returns the others.
func (w *worker) settle(batch []*message, err error, countTry bool) []*message {
	keep := make([]*message, 0, len(batch))
	var gone []*message
	for _, m := range batch {
		if countTry {
			m.tries++
		}
		if m.lastErr == nil || !errors.Is(err, ErrNoLeader) {
			m.lastErr = err
		}
		if !retriable(err) || m.tries > w.p.cfg.Retries {
			gone = append(gone, m)
		} else {
			keep = append(keep, m)
		}
	}
	w.giveUp(gone)
	return keep
}

// attempt sends batch to the partition's leader once.
func (w *worker) attempt(ctx context.Context, pp discovery.Partition, batch []*message) (int64, error) {
	p := w.p
	recs := make([]kclient.Record, len(batch))
	for i, m := range batch {
		recs[i] = p.record(m)
	}
	now := time.Now()
	for _, m := range batch {
		if m.attempts == 0 {
			p.sent.Add(1)
		} else {
			p.retries.Add(1)
		}
		m.attempts++
		m.sent = now
		m.partition = w.part
	}
	p.requests.Add(1)
	w.noteRoute(pp, now)
	rctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	offset, err := p.client.Produce(rctx, pp.Leader, kclient.ProduceRequest{
		Topic: p.cfg.Topic, Partition: w.part, Acks: p.cfg.Acks,
		Timeout: p.cfg.RequestTimeout, Compression: p.cfg.Compression, Records: recs,
	})
	cancel()
	p.cfg.Discovery.Report(pp.Group, time.Since(now), err)
	if err != nil && !errors.Is(err, kclient.ErrNotSent) {
		for _, m := range batch {
			m.written = true
		}
	}
	if err != nil {
		p.log.Debug("produce failed", "partition", w.part, "addr", pp.Leader, "messages", len(batch), "attempt", batch[0].attempts, "error", err)
	}
	return offset, err
}

// partition returns the partition's route entry.
func (w *worker) partition(ctx context.Context) (discovery.Partition, bool) {
	r, err := w.p.cfg.Discovery.Route(ctx, w.p.cfg.Topic)
	if err != nil {
		return discovery.Partition{}, false
	}
	return r.Partition(w.part)
}

// noteRoute reports the first request of the partition to a new address.
func (w *worker) noteRoute(pp discovery.Partition, at time.Time) {
	if pp.Leader == w.lastAddr {
		return
	}
	prev := w.lastAddr
	w.lastAddr = pp.Leader
	w.p.log.Debug("partition uses a new leader", "partition", w.part, "addr", pp.Leader, "previous", prev)
	if w.p.cfg.OnRoute != nil {
		w.p.cfg.OnRoute(discovery.Change{
			Client: w.p.cfg.Name, Topic: w.p.cfg.Topic, Partition: w.part,
			Addr: pp.Leader, Previous: prev, LeaderEpoch: pp.LeaderEpoch, At: at,
		})
	}
}

// move hands batch to another writable partition, preferring those outside
// the group that failed (RocketMQ's selectOneMessageQueue with the last
// broker name), spread over them by the batch's first sequence number. It
// reports false when there is no other writable partition. With healthy
// only partitions of other groups that fault avoidance does not reject
// qualify.
func (w *worker) move(batch []*message, group string, healthy bool) bool {
	p := w.p
	r, err := p.cfg.Discovery.Route(context.Background(), p.cfg.Topic)
	if err != nil {
		return false
	}
	var other, any []int32
	for _, c := range r.Writable(p.cfg.Discovery.Avoid) {
		if c.ID == w.part || int(c.ID) >= len(p.queues) {
			continue
		}
		if healthy && (c.Group == group || p.cfg.Discovery.Avoid(c.Group)) {
			continue
		}
		any = append(any, c.ID)
		if c.Group != group {
			other = append(other, c.ID)
		}
	}
	if len(other) == 0 {
		other = any
	}
	if len(other) == 0 {
		return false
	}
	target := other[int(batch[0].seq)%len(other)]
	for _, m := range batch {
		m.partition = target
	}
	p.moved.Add(int64(len(batch)))
	p.log.Debug("batch moves to another partition", "partition", w.part, "to", target, "messages", len(batch))
	p.queues[target].pushFront(batch)
	return true
}

// backoff waits RetryBackoff or until the run aborts.
func (w *worker) backoff(ctx context.Context) {
	if w.p.cfg.RetryBackoff <= 0 {
		return
	}
	t := time.NewTimer(w.p.cfg.RetryBackoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// expire finishes the messages past their delivery timeout and returns the
// others.
func (w *worker) expire(batch []*message) []*message {
	d := w.p.cfg.DeliveryTimeout
	if d == 0 {
		return batch
	}
	now := time.Now()
	keep := batch[:0:0]
	var gone []*message
	for _, m := range batch {
		if now.Sub(m.enqueued) >= d {
			gone = append(gone, m)
		} else {
			keep = append(keep, m)
		}
	}
	for _, m := range gone {
		if m.lastErr == nil || errors.Is(m.lastErr, ErrNoLeader) {
			m.lastErr = ErrDeliveryTimeout
		}
	}
	w.giveUp(gone)
	return keep
}

// giveUp records messages that will not be retried: Unknown when the last
// attempt may have reached the broker without an answer, Failed otherwise.
func (w *worker) giveUp(ms []*message) {
	var failed, unknown []*message
	for _, m := range ms {
		if outcomeOf(m) == history.Unknown {
			unknown = append(unknown, m)
		} else {
			failed = append(failed, m)
		}
	}
	for _, m := range failed {
		w.p.finishAll([]*message{m}, history.Failed, -1, m.lastErr)
	}
	for _, m := range unknown {
		w.p.finishAll([]*message{m}, history.Unknown, -1, m.lastErr)
	}
}

// outcomeOf classifies a message given up after its last error: a broker
// error code or a request never sent is Failed; a request that was sent and
// got no answer (timeout, broken connection) is Unknown.
func outcomeOf(m *message) history.Outcome {
	var kerr kafka.Error
	switch {
	case errors.As(m.lastErr, &kerr),
		errors.Is(m.lastErr, kclient.ErrNotSent),
		errors.Is(m.lastErr, ErrNoLeader),
		errors.Is(m.lastErr, ErrDeliveryTimeout),
		!m.written:
		return history.Failed
	}
	return history.Unknown
}

// retriable reports whether a failed attempt may be retried: network
// failures, timeouts, missing leaders and Kafka's retriable error codes.
func retriable(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return !errors.Is(err, kclient.ErrUnsupported)
}
