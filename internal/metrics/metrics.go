package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/brokerlab/brokerlab/internal/logs"
)

// Path is where every node serves its metrics.
const Path = "/metrics"

// ErrScrape marks a failed read of a metrics endpoint.
var ErrScrape = errors.New("metrics: scrape failed")

// RegistryOption configures NewRegistry.
type RegistryOption func(*prometheus.Registry)

// WithProcess adds the Go runtime and process collectors (CPU seconds,
// resident memory, goroutines). Only for a node alone in its process: in the
// in-process runtime every node would report the same process.
func WithProcess() RegistryOption {
	return func(r *prometheus.Registry) {
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
}

// NewRegistry returns a fresh registry for one node.
func NewRegistry(opts ...RegistryOption) *prometheus.Registry {
	r := prometheus.NewRegistry()
	for _, o := range opts {
		o(r)
	}
	return r
}

// Config configures a metrics Server.
type Config struct {
	// Listen is the TCP address of the HTTP endpoint ("127.0.0.1:0" picks
	// a port).
	Listen string
	// Logger receives the server's errors; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.Listen == "" {
		return errors.New("metrics: listen address is required")
	}
	return nil
}

// Server serves one registry over HTTP at Path.
type Server struct {
	cfg    Config
	reg    prometheus.Gatherer
	logger *slog.Logger

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	closed bool
}

// New returns a server for reg that is not yet listening.
func New(cfg Config, reg prometheus.Gatherer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("metrics: a registry is required")
	}
	logger := logs.OrDiscard(cfg.Logger)
	return &Server{cfg: cfg, reg: reg, logger: logger}, nil
}

// Start listens and serves in the background until Close.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.logger}}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close()
		return errors.New("metrics: server closed")
	}
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Warn("metrics server stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the listening host:port; empty before Start and on a nil server.
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the full address of the metrics page; empty before Start.
func (s *Server) URL() string {
	if a := s.Addr(); a != "" {
		return "http://" + a + Path
	}
	return ""
}

// Close stops the server and waits for it. It is idempotent, and safe on a
// nil server (a node without --metrics-listen).
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics", "error", fmt.Sprint(v...)) }

// Serve is the common case of a node's --metrics-listen: register cs in a
// fresh registry (with the Go and process collectors when process is set)
// and serve it. An empty listen serves nothing and returns a nil server
// (Addr and Close on nil are safe).
func Serve(ctx context.Context, listen string, process bool, logger *slog.Logger, cs ...prometheus.Collector) (*Server, error) {
	if listen == "" {
		return nil, nil
	}
	var opts []RegistryOption
	if process {
		opts = append(opts, WithProcess())
	}
	reg := NewRegistry(opts...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	s, err := New(Config{Listen: listen, Logger: logger}, reg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Sample is one series' value: its metric name, labels and value. A
// histogram contributes its _count and _sum as samples.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Label returns one label's value ("" when absent).
func (s Sample) Label(name string) string { return s.Labels[name] }

// Samples is a scraped page.
type Samples []Sample

// Sum adds the values of every series named name whose labels include all
// of match (nil matches all).
func (ss Samples) Sum(name string, match map[string]string) float64 {
	var t float64
	for _, s := range ss {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			ok = ok && s.Labels[k] == v
		}
		if ok {
			t += s.Value
		}
	}
	return t
}

// Parse reads a page in the Prometheus text format.
func Parse(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScrape, err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out Samples
	for _, n := range names {
		f := fams[n]
		for _, m := range f.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, samplesOf(n, f.GetType(), m, labels)...)
		}
	}
	return out, nil
}

func samplesOf(name string, t dto.MetricType, m *dto.Metric, labels map[string]string) []Sample {
	switch t {
	case dto.MetricType_COUNTER:
		return []Sample{{name, labels, m.GetCounter().GetValue()}}
	case dto.MetricType_GAUGE:
		return []Sample{{name, labels, m.GetGauge().GetValue()}}
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		return []Sample{{name + "_count", labels, float64(h.GetSampleCount())}, {name + "_sum", labels, h.GetSampleSum()}}
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		return []Sample{{name + "_count", labels, float64(s.GetSampleCount())}, {name + "_sum", labels, s.GetSampleSum()}}
	default:
		return []Sample{{name, labels, m.GetUntyped().GetValue()}}
	}
}

// Scrape reads url (a node's metrics page) with client (nil: a client with
// a 2 s timeout).
func Scrape(ctx context.Context, client *http.Client, url string) (Samples, error) {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScrape, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScrape, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s", ErrScrape, url, resp.Status)
	}
	return Parse(resp.Body)
}

// Cumulative keeps counters of several sources (nodes) as totals that
// survive restarts: a counter that went down was reset, and the value it
// had is carried over. Safe for concurrent use.
type Cumulative struct {
	mu   sync.Mutex
	last map[string]map[string]float64 // source -> key -> last value read
	base map[string]map[string]float64 // source -> key -> sum before resets
}

// NewCumulative returns an empty Cumulative.
func NewCumulative() *Cumulative {
	return &Cumulative{last: map[string]map[string]float64{}, base: map[string]map[string]float64{}}
}

// Observe records the current counter values of one source.
func (c *Cumulative) Observe(source string, values map[string]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last[source] == nil {
		c.last[source], c.base[source] = map[string]float64{}, map[string]float64{}
	}
	last, base := c.last[source], c.base[source]
	for k, v := range values {
		if v < last[k] {
			base[k] += last[k]
		}
		last[k] = v
	}
}

// Totals sums every source's totals by key.
func (c *Cumulative) Totals() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]float64{}
	for src, last := range c.last {
		for k, v := range last {
			out[k] += v
		}
		for k, v := range c.base[src] {
			out[k] += v
		}
	}
	return out
}

// Key joins a metric name and label values into a Cumulative key.
func Key(parts ...string) string { return strings.Join(parts, "/") }
