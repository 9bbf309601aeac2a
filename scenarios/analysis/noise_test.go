package analysis

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// busyEnv makes the test binary a bounded background load (see
// TestBusyLoopChild): it names how long to spin.
const busyEnv = "BROKERLAB_TEST_BUSY_FOR"

// spin keeps every core busy until d has passed.
func spin(d time.Duration) {
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			x := 0
			for time.Now().Before(end) {
				for i := range 10000 {
					x += i
				}
			}
			_ = x
		})
	}
	wg.Wait()
}

// The kernel's accounting is read: CPU time passes on the machine and this
// process's own busy loop shows as its share.
func TestReadCPUAccounting(t *testing.T) {
	a := ReadCPU()
	if a.Err != nil {
		t.Fatal(a.Err)
	}
	deadline := time.Now().Add(5 * time.Second)
	b := ReadCPU()
	for b.Err == nil && b.Self-a.Self < 20 && time.Now().Before(deadline) { // 0.2 s of our CPU
		spin(100 * time.Millisecond)
		b = ReadCPU()
	}
	n := NoiseBetween(a, b)
	if n == nil {
		t.Fatalf("no noise figures from %+v to %+v", a, b)
	}
	t.Logf("%+v", *n)
	if b.Self-a.Self < 20 || n.CPUSeconds <= 0 || n.SelfPct <= 0 || n.WindowS <= 0 {
		t.Errorf("CPU accounting not read: self %d ticks, %+v", b.Self-a.Self, *n)
	}
	if sum := n.StealPct + n.OtherPct + n.SelfPct + n.IdlePct; sum < 99.9 || sum > 100.1 {
		t.Errorf("shares add up to %.2f %%", sum)
	}
}

// TestBusyLoopChild is the background load of TestBackgroundLoadWarns when
// run as its child; alone it does nothing.
func TestBusyLoopChild(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(busyEnv))
	if err != nil {
		t.Skip("only a helper process of TestBackgroundLoadWarns")
	}
	spin(min(d, 10*time.Second))
}

// A forced background load (another process spinning on every core for
// 1.5 s) is counted as other processes' CPU and raises a warning.
func TestBackgroundLoadWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: a 1.5 s background load")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBusyLoopChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), busyEnv+"=1500ms")
	a := ReadCPU()
	out, err := cmd.CombinedOutput()
	b := ReadCPU()
	if err != nil {
		t.Fatalf("background load: %v\n%s", err, out)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	n := NoiseBetween(a, b)
	if n == nil {
		t.Fatalf("no noise figures from %+v to %+v", a, b)
	}
	other := time.Duration(n.OtherPct / 100 * n.CPUSeconds * float64(time.Second))
	t.Logf("background process used %v of CPU; other processes %v (%.0f %%), steal %.0f %%, self %.0f %%, load %.1f, warnings %q",
		child, other, n.OtherPct, n.StealPct, n.SelfPct, n.Load1, n.Warnings)
	if child < 100*time.Millisecond {
		t.Fatalf("the background load got only %v of CPU", child)
	}
	// The child's time is in "other", less the ticks lost at both ends.
	if other < child*8/10-50*time.Millisecond {
		t.Errorf("other processes' CPU %v is less than the background load's %v", other, child)
	}
	if !slicesContainsPrefix(n.Warnings, "other processes used") {
		t.Errorf("no warning about the background load: %q", n.Warnings)
	}
}

func slicesContainsPrefix(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestNoiseBetween(t *testing.T) {
	t1 := time.Unix(100, 0)
	a := CPUSample{At: t1, Busy: 1000, Idle: 5000, Steal: 10, Self: 300}
	b := CPUSample{At: t1.Add(2 * time.Second), Busy: 1300, Idle: 5060, Steal: 50, Self: 400}
	n := NoiseBetween(a, b) // 400 ticks: 300 busy (100 self), 60 idle, 40 steal
	if n == nil {
		t.Fatal("nil")
	}
	near(t, "cpu seconds", n.CPUSeconds, 4, 1e-9)
	near(t, "steal", n.StealPct, 10, 1e-9)
	near(t, "self", n.SelfPct, 25, 1e-9)
	near(t, "other", n.OtherPct, 50, 1e-9)
	near(t, "idle", n.IdlePct, 15, 1e-9)
	if len(n.Warnings) != 2 {
		t.Errorf("warnings %q, want steal and other processes", n.Warnings)
	}
	quiet := NoiseBetween(a, CPUSample{At: b.At, Busy: 1300, Idle: 6000, Steal: 10, Self: 580})
	if quiet == nil || len(quiet.Warnings) != 0 {
		t.Errorf("a quiet machine warned: %+v", quiet)
	}
	for _, bad := range []CPUSample{{Err: ErrCPUAccounting}, {Busy: 1, Idle: 1}, a} {
		if n := NoiseBetween(a, bad); n != nil {
			t.Errorf("NoiseBetween(%+v) = %+v, want nil", bad, n)
		}
	}
}

func TestParseCPUAccounting(t *testing.T) {
	busy, idle, steal, err := parseProcStat([]byte("cpu  271487 398 81915 434649 1055 0 3978 3641 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil || busy != 271487+398+81915+3978 || idle != 434649+1055 || steal != 3641 {
		t.Errorf("proc stat: %d %d %d %v", busy, idle, steal, err)
	}
	self, err := parseSelfStat([]byte("15349 (a) b) R 15343 15343 10608 0 -1 4194304 99 0 0 0 7 5 0 0 20 0 1 0"))
	if err != nil || self != 12 {
		t.Errorf("self stat: %d %v", self, err)
	}
	for _, bad := range []string{"", "cpu 1 2 3", "intr 5\n", "cpu a b c d e f g h"} {
		if _, _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) took it", bad)
		}
	}
	for _, bad := range []string{"", "1 (x R 1", "1 (x) R 1 2 3", "1 (x) R 1 2 3 4 5 6 7 8 9 x 1"} {
		if _, err := parseSelfStat([]byte(bad)); err == nil {
			t.Errorf("parseSelfStat(%q) took it", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("cpu  271487 398 81915 434649 1055 0 3978 3641 0 0\n"))
	f.Add([]byte("cpu 1 2 3 4 5 6 7"))
	f.Fuzz(func(t *testing.T, b []byte) {
		busy, idle, steal, err := parseProcStat(b)
		if err != nil && (busy != 0 || idle != 0 || steal != 0) {
			t.Errorf("error %v with values %d %d %d", err, busy, idle, steal)
		}
	})
}

func FuzzParseSelfStat(f *testing.F) {
	f.Add([]byte("15349 (cat) R 15343 15343 10608 0 -1 4194304 99 0 0 0 7 5 0 0 20 0 1 0"))
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseSelfStat(b)
		if err != nil && v != 0 {
			t.Errorf("error %v with value %d", err, v)
		}
	})
}
