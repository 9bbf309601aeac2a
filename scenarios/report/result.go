package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// ResultVersion is the format version written into result.json. Readers
// accept this version and older ones they know.
const ResultVersion = 1

// File names in a run's output directory.
const (
	ResultFile         = "result.json"
	ReportMarkdownFile = "report.md"
	ReportHTMLFile     = "report.html"
	maxResultBytes     = 1 << 30
	gitCommitTimeout   = 2 * time.Second
)

// Result is everything one `brokerlab run` produced: result.json.
type Result struct {
	// Version is ResultVersion.
	Version     int           `json:"version"`
	Scenario    scenario.Spec `json:"scenario"`
	Environment Environment   `json:"environment"`
	// Runtime is the runtime used ("inprocess", "docker").
	Runtime string `json:"runtime"`
	// Topologies holds one result per topology and rate step, in run order.
	Topologies []analysis.TopologyResult `json:"topologies"`
	// Repeats is the spread of every figure over the repeats of a
	// repeated scenario (Spec.Repeat > 1); nil otherwise.
	Repeats *RepeatSummary `json:"repeats,omitempty"`
	// Skipped lists topologies of the scenario that were not run (no
	// driver for the runtime), with the reason.
	Skipped []string `json:"skipped,omitempty"`
	// Searches holds each topology's rate search (workload.rate_search);
	// its probes are in Topologies too.
	Searches []analysis.SearchResult `json:"searches,omitempty"`
}

// Environment records where a result was measured.
type Environment struct {
	CPUModel  string    `json:"cpu_model"`
	Cores     int       `json:"cores"`
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	Arch      string    `json:"arch"`
	Hostname  string    `json:"hostname,omitempty"`
	Commit    string    `json:"commit,omitempty"` // git commit of brokerlab, if known
	Modified  bool      `json:"modified,omitempty"`
	Start     time.Time `json:"start"`
	// MemoryLimit is the Go runtime's soft memory limit when the run
	// started (brokerlab run -memory-limit, or GOMEMLIMIT), in bytes; 0:
	// none. It decides how often the collector runs, so it belongs with
	// the CPU figures.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
}

// CaptureEnvironment describes this machine and build. The commit comes from
// the binary's build info, else from `git rev-parse HEAD` in the working
// directory (bounded by ctx and a short timeout); it stays empty otherwise.
func CaptureEnvironment(ctx context.Context, start time.Time) Environment {
	env := Environment{
		CPUModel:  cpuModel(),
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Start:     start,
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		env.MemoryLimit = l
	}
	env.Hostname, _ = os.Hostname()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				env.Commit = s.Value
			case "vcs.modified":
				env.Modified = s.Value == "true"
			}
		}
	}
	if env.Commit == "" {
		env.Commit, env.Modified = gitCommit(ctx)
	}
	return env
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func gitCommit(ctx context.Context) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, gitCommitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return commit, err == nil && len(bytes.TrimSpace(st)) > 0
}

// MarshalResult encodes r as indented JSON, setting Version.
func MarshalResult(r Result) ([]byte, error) {
	r.Version = ResultVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("scenarios: encode result: %w", err)
	}
	return append(b, '\n'), nil
}

// UnmarshalResult decodes result.json content.
func UnmarshalResult(data []byte) (Result, error) {
	var r Result
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return Result{}, fmt.Errorf("%w: %v", analysis.ErrResult, err)
	}
	if r.Version < 1 || r.Version > ResultVersion {
		return Result{}, fmt.Errorf("%w: version %d, this build reads 1 to %d", analysis.ErrResult, r.Version, ResultVersion)
	}
	return r, nil
}

// WriteResult writes dir/result.json (creating dir), atomically.
func WriteResult(dir string, r Result) error {
	b, err := MarshalResult(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ResultFile), b)
}

// ReadResult reads a result.json file, or dir/result.json when path is a
// directory.
func ReadResult(path string) (Result, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ResultFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("scenarios: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResultBytes+1))
	if err != nil {
		return Result{}, fmt.Errorf("scenarios: read %s: %w", path, err)
	}
	if len(data) > maxResultBytes {
		return Result{}, fmt.Errorf("%w: %s is larger than %d bytes", analysis.ErrResult, path, maxResultBytes)
	}
	r, err := UnmarshalResult(data)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// writeFileAtomic writes via a temporary file and rename so a crash never
// leaves a half-written report.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scenarios: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("scenarios: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("scenarios: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("scenarios: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("scenarios: %w", err)
	}
	return nil
}

// WriteAll writes result.json, report.md and report.html into dir.
func WriteAll(dir string, r Result) error {
	if err := WriteResult(dir, r); err != nil {
		return err
	}
	return WriteReports(dir, r)
}

// WriteReports writes report.md and report.html for r into dir.
func WriteReports(dir string, r Result) error {
	if err := writeFileAtomic(filepath.Join(dir, ReportMarkdownFile), []byte(RenderMarkdown(r))); err != nil {
		return err
	}
	page, err := RenderHTML(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ReportHTMLFile), page)
}

// Rerender reads dir/result.json and writes report.md and report.html again
// (`brokerlab report DIR`).
func Rerender(dir string) error {
	r, err := ReadResult(filepath.Join(dir, ResultFile))
	if err != nil {
		return err
	}
	r.Repeats = AggregateRepeats(r) // as this build computes it
	return WriteReports(dir, r)
}
