package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

const (
	// window bounds a producer's messages without an outcome (brokerlab's
	// producer window; nats.go's own default is 4000).
	window = 10000
	// retryWait is the pause before a failed publish is sent again
	// (nats.go's DefaultPubRetryWait).
	retryWait = jetstream.DefaultPubRetryWait
	// attemptTimeout bounds the wait for one attempt's ack, after which it
	// is retried (nats.go's default JetStream request timeout). A leader
	// that is deposed drops what it had not committed without an answer.
	attemptTimeout = 5 * time.Second
	// sweepInterval is how often outcomes past their timeout are settled.
	sweepInterval = 10 * time.Millisecond
	// msgIDHeader is JetStream's de-duplication header.
	msgIDHeader = jetstream.MsgIDHeader
)

var (
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("jetstream: producer already run")
	// errRunEnded: the run ended before the message's outcome was known.
	errRunEnded = errors.New("jetstream: run ended")
	// errTimeout: no outcome within the workload's timeout.
	errTimeout = errors.New("jetstream: no outcome within the send timeout")
)

// checkWorkload rejects producer settings this driver cannot honour.
func checkWorkload(cfg scenarios.ProducerConfig) error {
	w := cfg.Workload
	switch {
	case cfg.Rate < 0:
		return fmt.Errorf("jetstream: producer %d: rate %v < 0", cfg.ID, cfg.Rate)
	case w.Timeout <= 0:
		return fmt.Errorf("jetstream: producer %d: timeout %v must be positive", cfg.ID, w.Timeout)
	case w.Retries < 0:
		return fmt.Errorf("jetstream: producer %d: retries %d < 0", cfg.ID, w.Retries)
	case w.MessageSize < 0:
		return fmt.Errorf("jetstream: producer %d: message size %d < 0", cfg.ID, w.MessageSize)
	case w.Acks != scenario.AcksNone && w.Acks != scenario.AcksLeader && w.Acks != scenario.AcksAll:
		return fmt.Errorf("jetstream: producer %d: acks %d", cfg.ID, w.Acks)
	}
	return nil
}

// producer publishes the open-loop schedule with nats.go's asynchronous
// JetStream publish. See the package documentation for the mapping of the
// workload's settings.
type producer struct {
	d    *deployment
	cfg  scenarios.ProducerConfig
	name string

	mu  sync.Mutex
	ran bool
}

// Run publishes from cfg.Start until cfg.Start+cfg.Duration and returns once
// every message has an outcome. When ctx ends first, messages without an
// outcome are recorded Unknown at once.
func (p *producer) Run(ctx context.Context, sink func(history.Send)) error {
	p.mu.Lock()
	ran := p.ran
	p.ran = true
	p.mu.Unlock()
	if ran {
		return ErrRunning
	}
	parts, err := p.d.topicInfo(p.cfg.Topic)
	if err != nil {
		return err
	}
	tr := p.d.track(p.name)
	nc, err := p.d.connect(p.name, tr)
	if err != nil {
		return fmt.Errorf("jetstream: %s: %w", p.name, err)
	}
	defer p.d.release(nc)
	r := &pubRun{
		cfg:      p.cfg,
		parts:    parts,
		nc:       nc,
		sink:     sink,
		track:    tr,
		payload:  make([]byte, p.cfg.Workload.MessageSize),
		byMsg:    map[*nats.Msg]*pubMsg{},
		slots:    make(chan struct{}, window),
		subjects: make([]string, parts),
		ordered:  !p.cfg.Workload.UnorderedRetries,
		ps:       make([]partState, parts),
	}
	for i := range r.subjects {
		r.subjects[i] = Subject(p.cfg.Topic, int32(i))
	}
	for i := range r.payload {
		r.payload[i] = byte('a' + i%26)
	}
	if p.cfg.Workload.Acks != scenario.AcksNone {
		r.js, err = jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(window),
			jetstream.WithPublishAsyncTimeout(min(attemptTimeout, p.cfg.Workload.Timeout)),
			jetstream.WithPublishAsyncAckHandler(r.onAck),
			jetstream.WithPublishAsyncErrHandler(r.onErr),
		)
		if err != nil {
			return fmt.Errorf("jetstream: %s: %w", p.name, err)
		}
	}
	return r.run(ctx)
}

// pubMsg is one message and what is known of it so far.
type pubMsg struct {
	send     history.Send
	msg      *nats.Msg // the attempt in flight or last sent (its key in byMsg)
	deadline time.Time // intended + Workload.Timeout
	done     bool
	inflight bool // an attempt was sent and not yet answered
}

// partState is one partition's retry state (under pubRun.mu). With ordered
// retries a failed message blocks its partition: messages created after
// it wait in held, and once every attempt in flight on the partition is
// answered the failed ones are sent again one at a time, in sequence order,
// until none is left; then the held ones go out in order. This is what a
// Kafka idempotent producer does for a partition (it fences with sequence
// numbers, which JetStream's per-stream message ids cannot do for several
// producers on one stream).
type partState struct {
	inflight int       // attempts sent and not yet answered
	blocked  bool      // a message failed: later ones wait in held
	backoff  bool      // the last event was a failure: wait before the next send
	pumping  bool      // a pump is scheduled
	retry    []*pubMsg // failed messages to send again, in sequence order
	held     []*pubMsg // messages created while blocked, never sent
}

// pubRun is one producer run. mu guards byMsg, queue and the pubMsg fields
// after creation.
type pubRun struct {
	cfg      scenarios.ProducerConfig
	parts    int
	nc       *nats.Conn
	js       jetstream.JetStream // nil with acks=0
	sink     func(history.Send)
	track    *clientTrack
	payload  []byte
	subjects []string
	slots    chan struct{} // one per message without an outcome
	pending  sync.WaitGroup
	// ordered holds a partition's later messages while a failed one is
	// retried (see partState); false retries each message on its own timer.
	ordered bool
	// sendMu orders the sends of ordered mode: the schedule and the pumps
	// decide and publish under it, so a partition's messages reach the
	// connection in sequence order. Never taken by nats.go callbacks; taken
	// before mu.
	sendMu sync.Mutex

	mu    sync.Mutex
	byMsg map[*nats.Msg]*pubMsg
	queue []*pubMsg // in creation order, i.e. deadline order
	head  int
	ps    []partState
}

func (r *pubRun) run(ctx context.Context) error {
	stopSweep := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() {
		defer sweeper.Done()
		r.sweep(stopSweep)
	}()
	r.schedule(ctx)
	settled := make(chan struct{})
	go func() {
		r.pending.Wait()
		close(settled)
	}()
	select {
	case <-settled:
	case <-ctx.Done():
		r.expireAll(errRunEnded)
		<-settled
	}
	close(stopSweep)
	sweeper.Wait()
	return nil
}

// schedule creates message i at its intended time Start + i/Rate (with Rate
// 0, as soon as fewer than window messages are outstanding) until
// Start+Duration, and publishes it. A full window holds the schedule back;
// intended times stay, so the delay shows in the latencies, and messages
// that waited past their timeout are recorded Unknown without being sent.
func (r *pubRun) schedule(ctx context.Context) {
	start, end := r.cfg.Start, r.cfg.Start.Add(r.cfg.Duration)
	if !sleepUntil(ctx, start) {
		return
	}
	for seq := int64(0); ; seq++ {
		var intended time.Time
		if r.cfg.Rate > 0 {
			intended = start.Add(time.Duration(float64(seq) * float64(time.Second) / r.cfg.Rate))
			if !intended.Before(end) {
				return
			}
			if !sleepUntil(ctx, intended) {
				r.unsent(seq, intended, time.Now())
				return
			}
			if deadline := intended.Add(r.cfg.Workload.Timeout); !time.Now().Before(deadline) {
				r.record(r.newMsg(seq, intended), history.Unknown, -1, errTimeout, time.Now())
				continue
			}
			if !r.acquire(ctx) {
				r.unsent(seq, intended, time.Now())
				return
			}
		} else {
			if !r.acquire(ctx) {
				return
			}
			intended = time.Now()
			if !intended.Before(end) {
				<-r.slots
				return
			}
		}
		m := r.newMsg(seq, intended)
		r.pending.Add(1)
		r.mu.Lock()
		r.queue = append(r.queue, m)
		r.mu.Unlock()
		r.send(m)
	}
}

// send publishes a new message, or in ordered mode holds it back while its
// partition is blocked.
func (r *pubRun) send(m *pubMsg) {
	if !r.ordered {
		r.publish(m)
		return
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	ps := &r.ps[m.send.Partition]
	if ps.blocked {
		ps.held = append(ps.held, m)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.publish(m)
}

// acquire takes a window slot; false when ctx ended first.
func (r *pubRun) acquire(ctx context.Context) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// unsent records every message from seq on that was due by now but never
// created because the run ended.
func (r *pubRun) unsent(seq int64, intended, now time.Time) {
	end := r.cfg.Start.Add(r.cfg.Duration)
	for ; !intended.After(now) && intended.Before(end); seq++ {
		r.record(r.newMsg(seq, intended), history.Unknown, -1, errRunEnded, now)
		intended = r.cfg.Start.Add(time.Duration(float64(seq+1) * float64(time.Second) / r.cfg.Rate))
	}
}

// newMsg builds message seq's record; each attempt gets its own nats.Msg
// (see publish).
func (r *pubRun) newMsg(seq int64, intended time.Time) *pubMsg {
	part := r.partition(seq)
	return &pubMsg{
		deadline: intended.Add(r.cfg.Workload.Timeout),
		send: history.Send{
			Producer:  r.cfg.ID,
			Seq:       seq,
			Partition: int32(part),
			Intended:  intended,
			Offset:    -1,
		},
	}
}

// headers are message seq's: producer, sequence, intended time and
// JetStream's message id, the same on every attempt.
func (r *pubRun) headers(seq int64, intended time.Time) nats.Header {
	id := strconv.Itoa(int(r.cfg.ID))
	s := strconv.FormatInt(seq, 10)
	return nats.Header{
		history.HeaderProducer: {id},
		history.HeaderSeq:      {s},
		history.HeaderIntended: {strconv.FormatInt(intended.UnixNano(), 10)},
		msgIDHeader:            {id + "-" + s},
	}
}

// partition is round-robin from the producer's id, or with Keys the hash of
// key seq mod Keys.
func (r *pubRun) partition(seq int64) int {
	if k := r.cfg.Workload.Keys; k > 0 {
		h := fnv.New32a()
		h.Write(strconv.AppendInt(nil, seq%int64(k), 10))
		return int(h.Sum32() % uint32(r.parts))
	}
	return int((seq + int64(r.cfg.ID)) % int64(r.parts))
}

// publish sends one attempt of m. With acks=0 it is a core NATS publish
// and m is Acked (offset -1) once handed to the connection.
func (r *pubRun) publish(m *pubMsg) {
	r.mu.Lock()
	if m.done {
		r.mu.Unlock()
		return
	}
	m.send.Attempts++
	m.send.Sent = time.Now()
	if !m.inflight {
		m.inflight = true
		r.ps[m.send.Partition].inflight++
	}
	// A new nats.Msg per attempt: nats.go holds it until the attempt's
	// answer and hands it back to onAck or onErr, once (a failed or
	// timed-out attempt is forgotten before the next is sent), so byMsg
	// maps only the latest attempt to m.
	msg := &nats.Msg{Subject: r.subjects[m.send.Partition], Data: r.payload}
	delete(r.byMsg, m.msg)
	m.msg = msg
	r.byMsg[msg] = m
	seq, intended := m.send.Seq, m.send.Intended
	r.mu.Unlock()
	// The headers exist only while the attempt is handed to the connection,
	// which encodes them: nats.go reads them only then (and to retry a
	// no-responders answer itself, which noRetry turns off), and no other
	// goroutine sees this msg's fields. A map of four strings is about 600
	// bytes; kept for a window of messages awaiting their acks it was 6 MB
	// per producer.
	msg.Header = r.headers(seq, intended)
	var err error
	if r.js == nil {
		err = r.nc.PublishMsg(msg)
	} else {
		// Retries are ours (Workload.Retries), not nats.go's.
		_, err = r.js.PublishMsgAsync(msg, noRetry)
	}
	msg.Header = nil
	switch {
	case err != nil:
		r.failed(m, err)
	case r.js == nil:
		now := time.Now()
		r.track.part(m.send.Partition).mark(now)
		r.finish(m, history.Acked, -1, nil, now)
	}
}

// noRetry leaves retries to the producer (Workload.Retries).
var noRetry = jetstream.WithRetryAttempts(0)

func (r *pubRun) lookup(msg *nats.Msg) *pubMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byMsg[msg]
}

// onAck is nats.go's acknowledgement callback: the stream sequence is the
// message's offset (a duplicate's is that of the copy already stored).
func (r *pubRun) onAck(_ jetstream.JetStream, msg *nats.Msg, ack *jetstream.PubAck) {
	m := r.lookup(msg)
	if m == nil {
		return
	}
	now := time.Now()
	r.track.part(m.send.Partition).mark(now)
	r.finish(m, history.Acked, int64(ack.Sequence), nil, now)
}

// onErr is nats.go's error callback. It may run with nats.go's publisher
// lock held, so it never publishes itself.
func (r *pubRun) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	if m := r.lookup(msg); m != nil {
		r.failed(m, err)
	}
}

// failed handles a failed attempt: again after retryWait while retries and
// time are left (in ordered mode in its partition's order, see partState),
// else the outcome. An attempt that went unanswered (timeout, lost
// connection) ends Unknown, one the system refused ends Failed.
func (r *pubRun) failed(m *pubMsg, err error) {
	r.mu.Lock()
	attempts := m.send.Attempts
	r.settleLocked(m)
	again := !m.done && attempts <= r.cfg.Workload.Retries && time.Now().Add(retryWait).Before(m.deadline)
	if again && r.ordered {
		ps := &r.ps[m.send.Partition]
		ps.blocked, ps.backoff = true, true
		i, _ := slices.BinarySearchFunc(ps.retry, m.send.Seq, func(x *pubMsg, seq int64) int { return cmp.Compare(x.send.Seq, seq) })
		ps.retry = slices.Insert(ps.retry, i, m)
		r.mu.Unlock()
		r.advance(int(m.send.Partition))
		return
	}
	r.mu.Unlock()
	if again {
		time.AfterFunc(retryWait, func() { r.publish(m) })
		return
	}
	outcome := history.Failed
	if unanswered(err) {
		outcome = history.Unknown
	}
	r.finish(m, outcome, -1, err, time.Now())
}

// unanswered reports whether err means the attempt got no answer, so it may
// have been stored.
func unanswered(err error) bool {
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// finish gives m its outcome, once.
func (r *pubRun) finish(m *pubMsg, o history.Outcome, offset int64, err error, at time.Time) {
	r.mu.Lock()
	if m.done {
		r.mu.Unlock()
		return
	}
	m.done = true
	r.settleLocked(m)
	delete(r.byMsg, m.msg)
	// The queue keeps m until every older message is done: drop the
	// attempt's message now.
	m.msg = nil
	r.mu.Unlock()
	<-r.slots
	r.record(m, o, offset, err, at)
	if r.ordered {
		r.advance(int(m.send.Partition))
	}
	r.pending.Done()
}

// settleLocked notes that m's attempt in flight, if any, has its answer.
// Lock should be held.
func (r *pubRun) settleLocked(m *pubMsg) {
	if m.inflight {
		m.inflight = false
		r.ps[m.send.Partition].inflight--
	}
}

// advance schedules the next step of blocked partition p once nothing of
// it is in flight: after retryWait when the last event was a failure. It
// never publishes itself (nats.go's callbacks call it).
func (r *pubRun) advance(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := &r.ps[p]
	if !ps.blocked || ps.inflight > 0 || ps.pumping {
		return
	}
	ps.pumping = true
	wait := time.Duration(0)
	if ps.backoff {
		wait = retryWait
	}
	time.AfterFunc(wait, func() { r.pump(p) })
}

// pump sends blocked partition p's next failed message again, alone; with
// none left it sends the held messages in order and unblocks p, unless one
// of them fails on the way (then the rest stay held).
func (r *pubRun) pump(p int) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	ps := &r.ps[p]
	ps.pumping, ps.backoff = false, false
	for len(ps.retry) > 0 && ps.retry[0].done {
		ps.retry = ps.retry[1:] // settled meanwhile (past its timeout)
	}
	if len(ps.retry) > 0 {
		m := ps.retry[0]
		ps.retry = ps.retry[1:]
		r.mu.Unlock()
		r.publish(m)
		r.advance(p) // m settled meanwhile: nothing in flight, go on
		return
	}
	for len(ps.held) > 0 && len(ps.retry) == 0 {
		m := ps.held[0]
		ps.held = ps.held[1:]
		r.mu.Unlock()
		r.publish(m)
		r.mu.Lock()
	}
	if len(ps.retry) == 0 && len(ps.held) == 0 {
		ps.blocked = false
	}
	r.mu.Unlock()
	r.advance(p) // a failure while releasing: continue once answered
}

// RetryOrder says how this producer retries (scenarios.RetryReporter).
func (p *producer) RetryOrder() string {
	if p.cfg.Workload.UnorderedRetries {
		return "unordered: each failed publish retried on its own timer, later messages go ahead (reorders a partition)"
	}
	return "ordered: a partition's later messages wait while a failed publish is retried, then go out in order"
}

// record passes m's outcome, known at at, to the sink.
func (r *pubRun) record(m *pubMsg, o history.Outcome, offset int64, err error, at time.Time) {
	r.mu.Lock()
	s := m.send
	r.mu.Unlock()
	s.Outcome, s.Offset, s.Done = o, offset, at
	if err != nil {
		s.Err = err.Error()
	}
	r.sink(s)
}

// sweep settles messages past their deadline as Unknown until stop closes.
func (r *pubRun) sweep(stop <-chan struct{}) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.expire(time.Now(), errTimeout)
	}
}

// expire records Unknown for every message whose deadline is not after now.
func (r *pubRun) expire(now time.Time, err error) {
	for {
		r.mu.Lock()
		for r.head < len(r.queue) && r.queue[r.head].done {
			r.queue[r.head] = nil
			r.head++
		}
		if r.head > 1024 && r.head > len(r.queue)/2 {
			r.queue = append(r.queue[:0], r.queue[r.head:]...)
			r.head = 0
		}
		if len(r.queue)-r.head > 2*window {
			// A message retried until its deadline keeps every later one
			// queued: forget the done ones (at most window are not).
			r.queue = slices.DeleteFunc(r.queue[r.head:], func(m *pubMsg) bool { return m.done })
			r.head = 0
		}
		if r.head == len(r.queue) || r.queue[r.head].deadline.After(now) {
			r.mu.Unlock()
			return
		}
		m := r.queue[r.head]
		r.mu.Unlock()
		r.finish(m, history.Unknown, -1, err, now)
	}
}

// expireAll records Unknown for every message without an outcome.
func (r *pubRun) expireAll(err error) {
	r.mu.Lock()
	var open []*pubMsg
	for _, m := range r.queue[r.head:] {
		if !m.done {
			open = append(open, m)
		}
	}
	r.mu.Unlock()
	for _, m := range open {
		r.finish(m, history.Unknown, -1, err, time.Now())
	}
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
