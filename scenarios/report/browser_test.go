package report

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The browser test opens report.html in headless Chromium, as a reader
// would, with every network request refused: the page must load, every
// chart must have a size, and no table may be wider than the page.
// Screenshots are kept in $BROKERLAB_SCREENSHOTS (default: a directory under
// the system temp dir, logged) for a look and for the README;
// $BROKERLAB_REPORT_DIR names a run's output directory to check as well.

// browserPath finds a Chromium; "" when none is installed.
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// syntheticRun is a result for one topology at one rate: a fault at 8 s
// that stops partition 0 for gap.
func syntheticRun(t *testing.T, topo scenario.Topology, rate float64, gap time.Duration, seed uint64) analysis.TopologyResult {
	t.Helper()
	x := seed
	run := analysis.Synthetic{Rate: rate, Duration: 20 * time.Second, Warmup: 3 * time.Second, Partitions: 3,
		AckLatency: 2 * time.Millisecond, RecvDelay: 3 * time.Millisecond,
		Edit: func(s *history.Send) bool {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			u := float64(x%1_000_000)/1_000_000 + 1e-6
			s.Done = s.Done.Add(time.Duration(-math.Log(u) * float64(time.Millisecond) * float64(seed)))
			if off := s.Intended.Sub(analysis.SyntheticStart); gap > 0 && s.Partition == 0 && off >= 8*time.Second && off < 8*time.Second+gap {
				s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
			}
			return true
		}}.Run()
	run.Topology = topo
	run.TargetRate = rate
	if gap > 0 {
		run.Faults = []analysis.FaultEvent{
			{At: analysis.SyntheticAt(8 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 0", Detected: analysis.SyntheticAt(8*time.Second + gap/2), Converged: analysis.SyntheticAt(8*time.Second + gap)},
			{At: analysis.SyntheticAt(14 * time.Second), Action: scenario.ActionRestart, Target: "killed", Node: "broker 0"},
		}
	}
	return analysis.Analyze(run, analysis.DefaultAnalysisConfig())
}

func TestReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: report.html is not opened in a browser")
	}
	path := browserPath()
	if path == "" {
		t.Skip("no Chromium installed (apt-get install chromium): report.html not checked in a browser")
	}
	out := os.Getenv("BROKERLAB_SCREENSHOTS")
	if out == "" {
		out = filepath.Join(os.TempDir(), "brokerlab-report-browser")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", out)

	quick := sampleResult(t)
	quick.Topologies = nil
	for i, topo := range scenario.KnownTopologies() {
		quick.Topologies = append(quick.Topologies, syntheticRun(t, topo, 500, time.Duration(i+1)*time.Second, uint64(i+1)))
	}
	sweep := sampleResult(t)
	sweep.Scenario.Faults = nil
	sweep.Topologies = nil
	for i, topo := range scenario.KnownTopologies() {
		for _, rate := range []float64{100, 300, 1000, 3000} {
			sweep.Topologies = append(sweep.Topologies, syntheticRun(t, topo, rate, 0, uint64(i+1)))
		}
	}
	for _, c := range []struct {
		name string
		r    Result
	}{{"quickstart", quick}, {"sweep", sweep}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteAll(dir, c.r); err != nil {
				t.Fatal(err)
			}
			checkInBrowser(t, path, filepath.Join(dir, ReportHTMLFile), filepath.Join(out, c.name))
		})
	}
	// A report of a real run, when one is named: the same checks, and the
	// screenshot the README shows.
	if dir := os.Getenv("BROKERLAB_REPORT_DIR"); dir != "" {
		t.Run("given", func(t *testing.T) {
			r, err := ReadResult(dir)
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			if err := WriteAll(tmp, r); err != nil { // rendered by this build
				t.Fatal(err)
			}
			checkInBrowser(t, path, filepath.Join(tmp, ReportHTMLFile), filepath.Join(out, "run-"+r.Scenario.Name))
		})
	}
}

// pageFacts is what the page measures of itself once loaded.
type pageFacts struct {
	Width   float64     `json:"width"`
	ScrollW float64     `json:"scrollW"`
	Charts  [][]float64 `json:"charts"`
	Tables  []float64   `json:"tables"`
	Title   string      `json:"title"`
}

const measureJS = `(() => {
  const w = document.documentElement.clientWidth;
  const charts = [...document.querySelectorAll('figure svg')].map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; });
  const tables = [...document.querySelectorAll('table')].map(e => e.getBoundingClientRect().right);
  return {width: w, scrollW: document.documentElement.scrollWidth, charts: charts, tables: tables, title: document.title};
})()`

func checkInBrowser(t *testing.T, browser, page, shots string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"), // no name resolves: no network
		chromedp.Flag("proxy-server", "127.0.0.1:9"),            // and nothing connects out
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var external []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			if u := e.Request.URL; !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") {
				mu.Lock()
				external = append(external, u)
				mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatalf("browser: start %s: %v", browser, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("browser: open %s: %v", page, err)
	}
	facts, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](measureJS))
	if err != nil {
		t.Fatalf("browser: measure: %v", err)
	}
	top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	mu.Lock()
	if len(external) > 0 {
		t.Errorf("the page asked the network for %v", external)
	}
	mu.Unlock()
	if !strings.HasPrefix(facts.Title, "brokerlab: ") {
		t.Errorf("page title %q: the page did not load", facts.Title)
	}
	if len(facts.Charts) == 0 {
		t.Error("no chart rendered")
	}
	for i, c := range facts.Charts {
		if len(c) != 2 || c[0] <= 0 || c[1] <= 0 {
			t.Errorf("chart %d has size %v", i, c)
		}
	}
	if len(facts.Tables) == 0 {
		t.Error("no table rendered")
	}
	for i, right := range facts.Tables {
		if right > facts.Width+0.5 {
			t.Errorf("table %d ends at %.0f px, wider than the page (%.0f px)", i, right, facts.Width)
		}
	}
	if facts.ScrollW > facts.Width+0.5 {
		t.Errorf("the page scrolls sideways: %.0f px of content in %.0f px", facts.ScrollW, facts.Width)
	}
	for name, b := range map[string][]byte{"-top.png": top, "-full.jpg": full} {
		if len(b) == 0 {
			t.Errorf("empty screenshot %s", name)
			continue
		}
		if err := os.WriteFile(shots+name, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%s: %d charts, %d tables, page %.0f px wide", filepath.Base(shots), len(facts.Charts), len(facts.Tables), facts.Width)
}
