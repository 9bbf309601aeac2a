package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Noise is what else used the machine while one topology ran: figures
// measured on a machine whose CPU went to other processes or to the
// hypervisor are not comparable with figures measured without. The CPU
// shares are of the whole machine's CPU time over the window (every core):
// 100 % is every core busy for the whole window. They come from the
// kernel's accounting (/proc/stat, /proc/self/stat) at the window's start
// and end.
//
// Under the in-process runtime every node runs in the runner's process, so
// Self is the system under test and the runner together; under docker the
// nodes are other processes and count in Other.
type Noise struct {
	// WindowS is how long the window lasted (producers' start to end).
	WindowS float64 `json:"window_s"`
	// CPUSeconds is the machine's CPU time accounted in the window, all
	// cores (0 when the accounting could not be read).
	CPUSeconds float64 `json:"cpu_seconds"`
	// StealPct is CPU time the hypervisor gave to other guests.
	StealPct float64 `json:"steal_pct"`
	// OtherPct is CPU time other processes used (busy time less Self).
	OtherPct float64 `json:"other_pct"`
	// SelfPct is CPU time of the runner's process (user and system).
	SelfPct float64 `json:"self_pct"`
	// IdlePct is idle and I/O-wait time.
	IdlePct float64 `json:"idle_pct"`
	// Load1 is the one-minute load average at the end of the window.
	Load1 float64 `json:"load1"`
	// Warnings say which of these were high enough to move the figures.
	Warnings []string `json:"warnings,omitempty"`
}

// Thresholds above which a run's figures are flagged. Steal takes CPU from
// under every thread at random moments; other processes compete for the
// cores the nodes need.
const (
	noiseStealWarnPct = 5
	noiseOtherWarnPct = 20
	// userHZ is the unit of /proc/stat and /proc/PID/stat times (USER_HZ,
	// 100 on every Linux architecture Go supports).
	userHZ = 100
)

// ErrCPUAccounting is wrapped by errors reading the kernel's CPU accounting.
var ErrCPUAccounting = errors.New("scenarios: cpu accounting")

// CPUSample is the machine's and this process's cumulative CPU accounting
// at one moment, in USER_HZ ticks.
type CPUSample struct {
	At time.Time
	// Busy (user, nice, system, irq, softirq), Idle (idle, iowait) and
	// Steal of all cores together, from /proc/stat.
	Busy, Idle, Steal uint64
	// Self is this process's user and system time, from /proc/self/stat.
	Self uint64
	// Err is set when the accounting could not be read.
	Err error
}

// ReadCPU samples the CPU accounting now.
func ReadCPU() CPUSample {
	s := CPUSample{At: time.Now()}
	stat, err := readSmall("/proc/stat")
	if err == nil {
		s.Busy, s.Idle, s.Steal, err = parseProcStat(stat)
	}
	if err == nil {
		var self []byte
		if self, err = readSmall("/proc/self/stat"); err == nil {
			s.Self, err = parseSelfStat(self)
		}
	}
	s.Err = err
	return s
}

// readSmall reads at most 1 MiB of a /proc file.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCPUAccounting, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCPUAccounting, err)
	}
	return b, nil
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. Guest time is
// already in user and nice.
func parseProcStat(b []byte) (busy, idle, steal uint64, err error) {
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, 0, 0, fmt.Errorf("%w: /proc/stat cpu line has %d fields, want 8 or more", ErrCPUAccounting, len(f)-1)
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return 0, 0, 0, fmt.Errorf("%w: /proc/stat: %v", ErrCPUAccounting, err)
			}
		}
		return v[0] + v[1] + v[2] + v[5] + v[6], v[3] + v[4], v[7], nil
	}
	return 0, 0, 0, fmt.Errorf("%w: no cpu line in /proc/stat", ErrCPUAccounting)
}

// parseSelfStat reads utime + stime (fields 14 and 15) of /proc/PID/stat.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseSelfStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: /proc/self/stat has no command name", ErrCPUAccounting)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: /proc/self/stat has %d fields after the name, want 13 or more", ErrCPUAccounting, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: /proc/self/stat: %v", ErrCPUAccounting, err)
	}
	return u + s, nil
}

// NoiseBetween is the noise of the window from a to b; nil when either
// sample failed or no CPU time was accounted between them.
func NoiseBetween(a, b CPUSample) *Noise {
	if a.Err != nil || b.Err != nil || b.Busy < a.Busy || b.Idle < a.Idle || b.Steal < a.Steal || b.Self < a.Self {
		return nil
	}
	busy, idle, steal := b.Busy-a.Busy, b.Idle-a.Idle, b.Steal-a.Steal
	total := float64(busy + idle + steal)
	if total == 0 {
		return nil
	}
	self := min(b.Self-a.Self, busy) // ticks are sampled: never more than all busy time
	pct := func(v uint64) float64 { return 100 * float64(v) / total }
	n := &Noise{
		WindowS:    b.At.Sub(a.At).Seconds(),
		CPUSeconds: total / userHZ,
		StealPct:   pct(steal),
		OtherPct:   pct(busy - self),
		SelfPct:    pct(self),
		IdlePct:    pct(idle),
		Load1:      load1(),
	}
	n.Warnings = NoiseWarnings(*n)
	return n
}

// noiseWarnings says which figures of n were high enough to move a run's
// results.
func NoiseWarnings(n Noise) []string {
	var w []string
	if n.StealPct >= noiseStealWarnPct {
		w = append(w, fmt.Sprintf("CPU steal %.0f %% (the hypervisor gave this machine's CPU to other guests)", n.StealPct))
	}
	if n.OtherPct >= noiseOtherWarnPct {
		w = append(w, fmt.Sprintf("other processes used %.0f %% of the machine's CPU (this run %.0f %%)", n.OtherPct, n.SelfPct))
	}
	return w
}

// load1 is the one-minute load average, or 0 when unknown.
func load1() float64 {
	b, err := readSmall("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}
