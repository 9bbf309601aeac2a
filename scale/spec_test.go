package scale

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"context"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"log/slog"
)

func TestParseSweep(t *testing.T) {
	s, err := ParseSweep("s.yaml", []byte(`name: s
data_plane: none
topologies: [coordinator, nameserver]
cluster: {brokers: [100, 10], timings: fast}
topic: {partitions: 1000}
scale: {idle: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Shapes()) != 2 || s.Shapes()[0].Brokers != 10 || s.Replication != 3 || s.Idle != 5*time.Second || s.Profile != "fast" {
		t.Fatalf("parsed %+v", s)
	}
	for _, c := range []struct{ yaml, want string }{
		{"data_plane: none\ntopologies: [coordinator]\ncluster: {brokers: 10}\ntopic: {partitions: 10}\nfoo: 1\n", "field foo not found"},
		{"data_plane: none\ntopologies: [jetstream]\ncluster: {brokers: 10}\ntopic: {partitions: 10}\n", `"jetstream" cannot run without a data plane`},
		{"data_plane: none\ntopologies: [coordinator]\ncluster: {brokers: 2}\ntopic: {partitions: 10}\n", "cluster.brokers: 2"},
		{"data_plane: none\ntopologies: [coordinator]\ncluster: {brokers: 10}\n", "topic.partitions"},
		{"data_plane: none\ntopologies: [coordinator]\ncluster: {brokers: 10}\ntopic: {partitions: 10}\nscale: {idle: -1s}\n", "scale.idle"},
		{"data_plane: full\n", "data_plane"},
		{"data_plane: none\ncluster: {brokers: [a]}\n", "line 2"},
	} {
		_, err := ParseSweep("bad.yaml", []byte(c.yaml))
		if err == nil || !errors.Is(err, ErrInvalidSweep) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("%q: error %v, want one naming bad.yaml and %q", c.yaml, err, c.want)
		}
	}
	if !IsSweep([]byte("data_plane: none\n")) || IsSweep([]byte("name: x\n")) || IsSweep([]byte("\x00[")) {
		t.Error("IsSweep")
	}
}

func TestCatalogueSweepParses(t *testing.T) {
	s, err := LoadSweep(filepath.Join("..", "scenarios", "control-plane-scale.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Topologies) < 2 || s.Brokers[len(s.Brokers)-1] < 1000 || s.Partitions[len(s.Partitions)-1] < 100000 {
		t.Errorf("the catalogue sweep %+v should reach 1000 brokers and 100000 partitions for coordinator and nameserver", s)
	}
}

func FuzzParseSweep(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("..", "scenarios", "control-plane-scale.yaml"))
	f.Add(b)
	f.Add([]byte("data_plane: none\ncluster: {brokers: [1, 2]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSweep("f.yaml", data)
		if err == nil && (len(s.Brokers) == 0 || len(s.Partitions) == 0 || len(s.Topologies) == 0) {
			t.Fatalf("accepted an incomplete sweep %+v", s)
		}
	})
}

// TestRunSweepReport runs a two-size sweep of the verified topologies (see
// unverified) and checks the
// report: a row per point, growth figures, charts.
func TestRunSweepReport(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the sweep takes about 30 s")
	}
	sw := Sweep{Name: "t", Topologies: []string{"coordinator", "nameserver"}, Brokers: []int{5, 10}, Partitions: []int{60}, Replication: 3,
		Profile: "fast", Idle: time.Second, Settle: 90 * time.Second}
	dir := t.TempDir()
	res, err := RunSweep(context.Background(), sw, SweepOptions{Dir: dir, Logger: testutil.Logger(t, slog.LevelError)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 2*len(sw.Topologies) {
		t.Fatalf("%d points, want %d", len(res.Points), 2*len(sw.Topologies))
	}
	for _, p := range res.Points {
		if p.Error != "" {
			t.Errorf("%s at %d: %s", p.Topology, p.Brokers, p.Error)
		}
	}
	if err := WriteAll(dir, res); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{"| coordinator | 10 | 60 |", "| nameserver | 5 | 60 |", "How the figures grow", "idle req/s per broker"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(string(page), "<svg"); n < 4 {
		t.Errorf("report.html has %d charts", n)
	}
}
