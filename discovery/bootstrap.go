package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/internal/logs"
)

// BootstrapConfig configures Kafka-style discovery.
type BootstrapConfig struct {
	// Brokers are host:port of bootstrap brokers; any of them (and any
	// broker learned from Metadata since) may be asked.
	Brokers []string `yaml:"brokers" json:"brokers"`
	// MetadataMaxAge is how long a route is used before Metadata is asked
	// again even without errors (metadata.max.age.ms: production 300 s,
	// fast profile 5 s).
	MetadataMaxAge time.Duration `yaml:"metadata_max_age" json:"metadata_max_age"`
	// RefreshBackoff is the minimum time between refreshes of an
	// invalidated route (retry.backoff.ms: 100 ms).
	RefreshBackoff time.Duration `yaml:"refresh_backoff" json:"refresh_backoff"`
	// RequestTimeout bounds one Metadata request (request.timeout.ms: 30 s);
	// a broker that does not answer in time is skipped for the next one.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// HedgeAfter is how long a Metadata request may go unanswered before
	// the next broker is asked as well (the first answer wins); 0 asks one
	// broker at a time. Kafka's client gets the same effect from its
	// least-loaded-node choice, which passes over a broker whose requests
	// hang; this client's discovery cannot see the producer's requests.
	HedgeAfter time.Duration `yaml:"hedge_after" json:"hedge_after"`
	// OnChange, when set, is called after a refresh for every partition
	// whose leader (address or epoch) changed, and for every partition on
	// the first refresh. It is called from the goroutine that asked for the
	// route, possibly concurrently, and must return quickly.
	OnChange func(Change) `yaml:"-" json:"-"`
	// Dial opens connections; nil uses net.Dialer.
	Dial kclient.DialFunc `yaml:"-" json:"-"`
	// Logger receives discovery logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultBootstrapConfig returns a Kafka client's defaults; Brokers is still
// to be set.
func DefaultBootstrapConfig() BootstrapConfig {
	return BootstrapConfig{
		MetadataMaxAge: 5 * time.Minute,
		RefreshBackoff: 100 * time.Millisecond,
		RequestTimeout: 30 * time.Second,
		HedgeAfter:     time.Second,
	}
}

// Validate reports the first invalid setting.
func (c BootstrapConfig) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("discovery: at least one bootstrap broker is required")
	case slices.Contains(c.Brokers, ""):
		return errors.New("discovery: empty bootstrap broker address")
	case c.MetadataMaxAge <= 0:
		return errors.New("discovery: metadata max age must be positive")
	case c.RefreshBackoff < 0:
		return errors.New("discovery: refresh backoff must not be negative")
	case c.RequestTimeout <= 0:
		return errors.New("discovery: request timeout must be positive")
	case c.HedgeAfter < 0:
		return errors.New("discovery: hedge delay must not be negative")
	}
	return nil
}

// Bootstrap is Kafka-style discovery: a topic's route comes from a Metadata
// request to any known broker, is kept for MetadataMaxAge, and is fetched
// again on the next use after Invalidate. Kafka clients have no fault
// avoidance (Avoid is always false), but like Kafka's least-loaded-node
// choice a refresh asks brokers whose last request failed (Report, or a
// failed Metadata) only after the others, so a silent broker does not
// hold every refresh for a request timeout.
type Bootstrap struct {
	cfg    BootstrapConfig
	log    *slog.Logger
	client *kclient.Client
	cache  *cache

	mu      sync.Mutex       // guards known, next, ids and suspect
	known   []string         // bootstrap brokers, then brokers learned from Metadata
	next    int              // where the next refresh starts in known
	ids     map[int32]string // node id -> address, from the last Metadata
	suspect map[string]bool  // addresses whose last request failed
}

// NewBootstrap validates cfg and returns a Bootstrap; it connects lazily.
func NewBootstrap(cfg BootstrapConfig) (*Bootstrap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	b := &Bootstrap{
		cfg:   cfg,
		log:   log,
		known: slices.Clone(cfg.Brokers),
		client: kclient.New(kclient.Config{
			ClientID: "brokerlab-discovery", Dial: cfg.Dial, Logger: log,
			DialTimeout: min(cfg.RequestTimeout, kclient.DefaultConfig().DialTimeout),
		}),
	}
	b.cache = newCache(cfg.MetadataMaxAge, cfg.RefreshBackoff, b.fetch, cfg.OnChange, log)
	return b, nil
}

// Route implements Discovery.
func (b *Bootstrap) Route(ctx context.Context, topic string) (Route, error) {
	return b.cache.route(ctx, topic)
}

// Invalidate implements Discovery.
func (b *Bootstrap) Invalidate(topic string) { b.cache.invalidate(topic) }

// Report implements Discovery: a failed request to a partition's leader
// (group "broker-<id>") makes refreshes ask that broker last, until a
// request to it succeeds.
func (b *Bootstrap) Report(group string, _ time.Duration, err error) {
	s, ok := strings.CutPrefix(group, "broker-")
	if !ok {
		return
	}
	id, perr := strconv.ParseInt(s, 10, 32)
	if perr != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if addr, ok := b.ids[int32(id)]; ok {
		b.markLocked(addr, err != nil)
	}
}

func (b *Bootstrap) markLocked(addr string, failed bool) {
	if failed {
		if b.suspect == nil {
			b.suspect = map[string]bool{}
		}
		b.suspect[addr] = true
		return
	}
	delete(b.suspect, addr)
}

// Avoid implements Discovery; it is always false.
func (b *Bootstrap) Avoid(string) bool { return false }

// Close implements Discovery.
func (b *Bootstrap) Close() error {
	b.cache.close()
	return b.client.Close()
}

// Brokers returns the broker addresses known now (bootstrap and learned).
func (b *Bootstrap) Brokers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.known)
}

// CreateTopic creates a topic through any known broker; an existing topic is
// not an error.
func (b *Bootstrap) CreateTopic(ctx context.Context, topic string, partitions int32, replication int16) error {
	var errs []error
	for _, addr := range b.candidates() {
		rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		err := b.client.CreateTopic(rctx, addr, topic, partitions, replication, b.cfg.RequestTimeout)
		cancel()
		if err == nil {
			b.Invalidate(topic)
			return nil
		}
		var kerr kafka.Error
		if errors.As(err, &kerr) && !errors.Is(err, kafka.NotController) {
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("discovery: create topic %s: %w: %w", topic, ErrNoRoute, errors.Join(errs...))
}

// candidates returns the known brokers starting at a rotating position, so
// consecutive refreshes spread over brokers and skip one that failed; those
// whose last request failed come last.
func (b *Bootstrap) candidates() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.known)
	out := make([]string, 0, n)
	var last []string
	for i := range n {
		a := b.known[(b.next+i)%n]
		if b.suspect[a] {
			last = append(last, a)
			continue
		}
		out = append(out, a)
	}
	return append(out, last...)
}

// fetch asks known brokers for the topic's metadata in candidates order:
// the next broker is asked when one fails, or, with HedgeAfter, when one has
// not answered that long. The first answer wins; brokers that failed, or
// were still silent then, are asked last next time.
func (b *Bootstrap) fetch(ctx context.Context, topic string, _ bool) (Route, error) {
	cands := b.candidates()
	type answer struct {
		addr string
		md   kclient.Metadata
		err  error
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel() // stragglers give up once an answer is in
	answers := make(chan answer, len(cands))
	hedge := time.NewTimer(time.Hour)
	hedge.Stop()
	defer hedge.Stop()
	pending := map[string]bool{}
	next := 0
	ask := func() {
		addr := cands[next]
		next++
		pending[addr] = true
		go func() {
			rctx, rcancel := context.WithTimeout(actx, b.cfg.RequestTimeout)
			md, err := b.client.Metadata(rctx, addr, []string{topic})
			rcancel()
			answers <- answer{addr, md, err}
		}()
		if b.cfg.HedgeAfter > 0 {
			hedge.Reset(b.cfg.HedgeAfter)
		}
	}
	var errs []error
	if len(cands) > 0 {
		ask()
	}
	for len(pending) > 0 {
		select {
		case <-hedge.C:
			if next < len(cands) {
				ask()
			}
			continue
		case a := <-answers:
			delete(pending, a.addr)
			if a.err != nil {
				b.log.Debug("metadata request failed", "addr", a.addr, "topic", topic, "error", a.err)
				errs = append(errs, a.err)
				b.skip(a.addr)
				b.mu.Lock()
				b.markLocked(a.addr, ctx.Err() == nil) // our own deadline is not the broker's fault
				b.mu.Unlock()
				if ctx.Err() == nil && next < len(cands) {
					ask()
				}
				continue
			}
			b.learn(a.md)
			b.mu.Lock()
			b.markLocked(a.addr, false)
			for addr := range pending {
				b.log.Debug("metadata request passed over", "addr", addr, "topic", topic, "answered", a.addr)
				b.markLocked(addr, true)
			}
			b.mu.Unlock()
			return routeFromMetadata(a.md, topic)
		}
	}
	return Route{}, fmt.Errorf("discovery: metadata for %s: %w: %w", topic, ErrNoRoute, errors.Join(errs...))
}

// skip moves the rotation past addr.
func (b *Bootstrap) skip(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.known, addr); i >= 0 {
		b.next = (i + 1) % len(b.known)
	}
}

// learn adds the brokers a Metadata response names.
func (b *Bootstrap) learn(md kclient.Metadata) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]int32, 0, len(md.Brokers))
	for id := range md.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b.ids = maps.Clone(md.Brokers)
	for _, id := range ids {
		if a := md.Brokers[id]; !slices.Contains(b.known, a) {
			b.known = append(b.known, a)
		}
	}
}

// routeFromMetadata builds the topic's route. A partition whose leader is
// not among the live brokers has no leader.
func routeFromMetadata(md kclient.Metadata, topic string) (Route, error) {
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Err != nil {
			if errors.Is(t.Err, kafka.UnknownTopicOrPartition) {
				return Route{}, fmt.Errorf("discovery: %s: %w: %w", topic, ErrUnknownTopic, t.Err)
			}
			return Route{}, fmt.Errorf("discovery: %s: %w", topic, t.Err)
		}
		r := Route{Topic: topic, Partitions: make([]Partition, len(t.Partitions))}
		for i := range r.Partitions {
			r.Partitions[i] = Partition{ID: int32(i), LeaderID: -1, LeaderEpoch: -1}
		}
		for _, p := range t.Partitions {
			if p.ID < 0 || int(p.ID) >= len(t.Partitions) {
				return Route{}, fmt.Errorf("discovery: %s: partition %d out of range", topic, p.ID)
			}
			part := Partition{ID: p.ID, LeaderID: -1, LeaderEpoch: p.LeaderEpoch}
			if addr, ok := md.Brokers[p.Leader]; ok && p.Leader >= 0 {
				part.Leader, part.LeaderID = addr, p.Leader
				part.Readers = []string{addr}
				part.Group = fmt.Sprintf("broker-%d", p.Leader)
			}
			r.Partitions[p.ID] = part
		}
		return r, nil
	}
	return Route{}, fmt.Errorf("discovery: %s: %w", topic, ErrUnknownTopic)
}
