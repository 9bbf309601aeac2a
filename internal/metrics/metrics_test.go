package metrics

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeAndScrape(t *testing.T) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerlab_test_things_total", Help: "things"}, []string{"kind"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "brokerlab_test_duration_seconds", Help: "d"})
	srv, err := Serve(context.Background(), "127.0.0.1:0", false, nil, c, h)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Add(3)
	h.Observe(0.5)
	ss, err := Scrape(context.Background(), nil, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.Sum("brokerlab_test_things_total", nil); got != 5 {
		t.Errorf("sum = %v, want 5", got)
	}
	if got := ss.Sum("brokerlab_test_things_total", map[string]string{"kind": "b"}); got != 3 {
		t.Errorf("kind b = %v, want 3", got)
	}
	if got := ss.Sum("brokerlab_test_duration_seconds_count", nil); got != 1 {
		t.Errorf("histogram count = %v, want 1", got)
	}
	if got := ss.Sum("go_goroutines", nil); got != 0 {
		t.Errorf("process series served without WithProcess")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := Scrape(context.Background(), nil, "http://"+srv.Addr()+Path); err == nil {
		t.Error("scrape after Close succeeded")
	}
}

func TestServeOff(t *testing.T) {
	srv, err := Serve(context.Background(), "", true, nil)
	if err != nil || srv != nil {
		t.Fatalf("empty listen: %v %v", srv, err)
	}
	if srv.Addr() != "" || srv.Close() != nil {
		t.Error("nil server misbehaves")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse(strings.NewReader("not a metric page {{{")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestCumulativeCarriesResets(t *testing.T) {
	c := NewCumulative()
	c.Observe("n1", map[string]float64{"x": 10})
	c.Observe("n2", map[string]float64{"x": 1})
	c.Observe("n1", map[string]float64{"x": 4}) // restarted
	c.Observe("n1", map[string]float64{"x": 6})
	if got := c.Totals()["x"]; got != 17 {
		t.Errorf("total = %v, want 10+6+1", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("# TYPE a counter\na_total{k=\"v\"} 1\n")
	f.Add("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n")
	f.Fuzz(func(t *testing.T, page string) {
		_, _ = Parse(strings.NewReader(page))
	})
}
