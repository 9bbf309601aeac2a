package swarm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/brokerlab/brokerlab/docker"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// loadgens hands out the run's load generators, round robin, and builds
// remote producers and consumers on them.
type loadgens struct {
	nodes  []*docker.Node
	routes *nodes.RouteLog
	style  producer.Style
	// discovery fills a session's discovery for the cluster.
	discovery func(s *session)
	logger    *slog.Logger

	mu        sync.Mutex
	maxOffset time.Duration // largest clock offset measured, by magnitude
}

func (l *loadgens) pick(id int) *docker.Node { return l.nodes[id%len(l.nodes)] }

// largestOffset is the largest clock offset measured so far, by magnitude
// (load generator minus runner).
func (l *loadgens) largestOffset() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxOffset
}

// Clients runs one load generator service per swarm node that takes
// clients (at most one per client of the workload) and waits until they
// serve; producers and consumers are sessions on them.
func (s *services) Clients(ctx context.Context, c *docker.Cluster, spec docker.ClientSpec) (docker.Clients, error) {
	hosts := 0
	for _, h := range s.hosts {
		if h.takes(docker.RoleClient) {
			hosts++
		}
	}
	w := s.spec.Workload
	count := max(min(hosts, max(w.Producers, 1)+max(w.Consumers, 1)), 1)
	var gens []*docker.Node
	for i := range count {
		n, err := c.Add(nodes.MemberName("loadgen", i), docker.RoleClient, loadgenPort)
		if err != nil {
			return nil, err
		}
		gens = append(gens, n)
	}
	err := c.LaunchAll(ctx, gens, func(int, *docker.Node) []string {
		return []string{"loadgen", "--listen", "0.0.0.0:" + strconv.Itoa(loadgenPort), "--log-level", "warn"}
	})
	if err != nil {
		return nil, err
	}
	l := &loadgens{nodes: gens, routes: spec.Routes, style: spec.Style, logger: spec.Logger,
		discovery: func(ss *session) { ss.Bootstrap, ss.NameServers = spec.Bootstrap, spec.NameServers }}
	s.mu.Lock()
	s.gens = l
	s.mu.Unlock()
	return l, nil
}

// conn is one session with a load generator.
type conn struct {
	c      net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	wmu    sync.Mutex
	offset time.Duration // load generator clock minus runner clock
	rtt    time.Duration
	name   string
}

// dial opens a session on n and measures the clock offset: the best of a
// few clock exchanges (the one with the shortest round trip), taking the
// load generator's reading to be from the middle of the round trip.
func (l *loadgens) dial(ctx context.Context, n *docker.Node, name string) (*conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", n.RunnerAddr(loadgenPort))
	if err != nil {
		return nil, fmt.Errorf("swarm: load generator %s: %w", n.Name, err)
	}
	cn := &conn{c: c, r: bufio.NewReaderSize(c, 256<<10), w: bufio.NewWriter(c), name: name}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cn.rtt = time.Hour
	for range 5 {
		t0 := time.Now()
		if err := cn.send(frameClock, nil); err != nil {
			c.Close()
			return nil, err
		}
		kind, body, err := readFrame(cn.r)
		t1 := time.Now()
		if err == nil && kind != frameNow {
			err = fmt.Errorf("%w: kind %d for clock", errWire, kind)
		}
		var tw time.Time
		if err == nil {
			tw, err = decodeNow(body)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("swarm: load generator %s clock: %w", n.Name, err)
		}
		if rtt := t1.Sub(t0); rtt < cn.rtt {
			cn.rtt, cn.offset = rtt, tw.Sub(t0.Add(rtt/2))
		}
	}
	_ = c.SetDeadline(time.Time{})
	l.mu.Lock()
	if abs(cn.offset) > abs(l.maxOffset) {
		l.maxOffset = cn.offset
	}
	l.mu.Unlock()
	l.logger.Debug("load generator session", "client", name, "loadgen", n.Name, "clock-offset", cn.offset, "rtt", cn.rtt)
	return cn, nil
}

// clockExchange checks that a load generator answers a clock question.
func clockExchange(ctx context.Context, addr string) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	w := bufio.NewWriter(c)
	if err := writeFrame(w, frameClock, nil); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	kind, body, err := readFrame(bufio.NewReader(c))
	if err != nil {
		return err
	}
	if kind != frameNow {
		return fmt.Errorf("%w: kind %d for clock", errWire, kind)
	}
	_, err = decodeNow(body)
	return err
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (c *conn) send(kind byte, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := writeFrame(c.w, kind, body); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *conn) start(s session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return c.send(frameStart, b)
}

// NewProducer opens a session for the producer on a load generator; the
// schedule's start is shifted to the load generator's clock, and every
// record's times back to the runner's.
func (l *loadgens) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	n := l.pick(int(cfg.ID))
	name := fmt.Sprintf("producer-%d", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := l.dial(ctx, n, name)
	if err != nil {
		return nil, err
	}
	cfg.Start = cfg.Start.Add(c.offset)
	s := session{Producer: &cfg, Style: l.style}
	l.discovery(&s)
	if err := c.start(s); err != nil {
		c.c.Close()
		return nil, err
	}
	return &remoteProducer{l: l, c: c, style: l.style}, nil
}

type remoteProducer struct {
	l     *loadgens
	c     *conn
	style producer.Style
}

// RetryOrder says how the producer's style retries (scenarios.RetryReporter).
func (p *remoteProducer) RetryOrder() string { return p.style.RetryOrder() }

func (p *remoteProducer) Run(ctx context.Context, sink func(history.Send)) error {
	defer p.c.c.Close()
	stop := context.AfterFunc(ctx, func() { p.c.c.Close() })
	defer stop()
	return p.l.read(p.c, func(kind byte, body []byte) (bool, error) {
		if kind != frameSend {
			return false, fmt.Errorf("%w: kind %d from a producer", errWire, kind)
		}
		s, err := decodeSend(body, p.c.offset)
		if err == nil {
			sink(s)
		}
		return false, err
	})
}

// read handles a session's frames until done: routes go to the route log,
// other kinds to handle (which returns true to stop early).
func (l *loadgens) read(c *conn, handle func(kind byte, body []byte) (bool, error)) error {
	for {
		kind, body, err := readFrame(c.r)
		if err != nil {
			return fmt.Errorf("swarm: %s: %w", c.name, err)
		}
		switch kind {
		case frameRoute:
			ch, err := decodeRoute(body, c.offset)
			if err != nil {
				return err
			}
			l.routes.Record(ch)
		case frameDone:
			ok, msg, err := decodeResult(body)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("swarm: %s: %s", c.name, msg)
			}
			return nil
		default:
			if stop, err := handle(kind, body); err != nil || stop {
				return err
			}
		}
	}
}

// NewConsumer opens a session for the consumer on a load generator.
func (l *loadgens) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	n := l.pick(cfg.ID)
	name := fmt.Sprintf("consumer-%d", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := l.dial(ctx, n, name)
	if err != nil {
		return nil, err
	}
	s := session{Consumer: &cfg, Style: l.style}
	l.discovery(&s)
	if err := c.start(s); err != nil {
		c.c.Close()
		return nil, err
	}
	return &remoteConsumer{l: l, c: c, answers: make(chan answer, 1), ended: make(chan struct{})}, nil
}

// answer is a reply to one of the runner's questions.
type answer struct {
	kind byte
	body []byte
}

// remoteConsumer is a consumer running on a load generator. Its questions
// (CaughtUp, Reads, LogReaches) are answered while Run reads the session;
// one question is outstanding at a time.
type remoteConsumer struct {
	l       *loadgens
	c       *conn
	ask     sync.Mutex
	answers chan answer
	ended   chan struct{} // closed when Run returned

	mu    sync.Mutex
	reads []analysis.PartitionRead // the last reads the load generator sent
}

func (rc *remoteConsumer) Run(ctx context.Context, sink func(history.Receive)) error {
	defer close(rc.ended)
	defer rc.c.c.Close()
	// When ctx ends the consumer is told to stop; it sends what it still
	// has, then done. A load generator that does not finish in time is cut.
	stop := context.AfterFunc(ctx, func() {
		_ = rc.c.send(frameStop, nil)
		time.AfterFunc(15*time.Second, func() { rc.c.c.Close() })
	})
	defer stop()
	return rc.l.read(rc.c, func(kind byte, body []byte) (bool, error) {
		switch kind {
		case frameReceive:
			m, err := decodeReceive(body, rc.c.offset)
			if err == nil {
				sink(m)
			}
			return false, err
		case frameReadsAns:
			var reads []analysis.PartitionRead
			if err := json.Unmarshal(body, &reads); err != nil {
				return false, fmt.Errorf("%w: reads: %v", errWire, err)
			}
			rc.mu.Lock()
			rc.reads = reads
			rc.mu.Unlock()
		case frameCaughtUp, frameReachAns:
		default:
			return false, fmt.Errorf("%w: kind %d from a consumer", errWire, kind)
		}
		if kind != frameReceive {
			select {
			case rc.answers <- answer{kind, body}:
			default: // nobody asked (the final reads)
			}
		}
		return false, nil
	})
}

// question sends a question and waits for its answer.
func (rc *remoteConsumer) question(ctx context.Context, kind byte, body []byte, want byte) ([]byte, error) {
	rc.ask.Lock()
	defer rc.ask.Unlock()
	select {
	case <-rc.ended:
		return nil, errors.New("swarm: consumer ended")
	default:
	}
	if err := rc.c.send(kind, body); err != nil {
		return nil, err
	}
	for {
		select {
		case a := <-rc.answers:
			if a.kind == want {
				return a.body, nil
			}
		case <-rc.ended:
			return nil, errors.New("swarm: consumer ended")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (rc *remoteConsumer) CaughtUp(ctx context.Context) (bool, error) {
	b, err := rc.question(ctx, frameCaught, nil, frameCaughtUp)
	if err != nil {
		return false, err
	}
	ok, msg, err := decodeResult(b)
	if err == nil && msg != "" {
		err = errors.New(msg)
	}
	return ok, err
}

// Reads asks the running consumer; after Run, it is what the load
// generator sent last (its final reads).
func (rc *remoteConsumer) Reads() []analysis.PartitionRead {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rc.question(ctx, frameReads, nil, frameReadsAns); err != nil {
		rc.l.logger.Debug("reads from the last answer", "client", rc.c.name, "error", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.reads
}

func (rc *remoteConsumer) LogReaches(ctx context.Context, partition int32, offset int64) (bool, error) {
	b, err := rc.question(ctx, frameReaches, encodeReaches(partition, offset), frameReachAns)
	if err != nil {
		return false, err
	}
	ok, msg, err := decodeResult(b)
	if err == nil && msg != "" {
		err = errors.New(msg)
	}
	return ok, err
}
