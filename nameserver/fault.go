package nameserver

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// LatencyTable maps a send's latency to how long its group is avoided
// afterwards: a send that took at least LatencyMax[i] (and less than
// LatencyMax[i+1]) isolates the group for NotAvailable[i]. A failed send
// isolates it for the last, largest window. This is RocketMQ's
// MQFaultStrategy.
type LatencyTable struct {
	LatencyMax   []time.Duration `yaml:"latency_max" json:"latency_max"`
	NotAvailable []time.Duration `yaml:"not_available" json:"not_available"`
}

// DefaultLatencyTable is RocketMQ's table: latencyMax {50, 100, 550, 1000,
// 2000, 3000, 15000} ms -> notAvailable {0, 0, 30, 60, 120, 180, 600} s.
func DefaultLatencyTable() LatencyTable {
	return LatencyTable{
		LatencyMax: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 550 * time.Millisecond,
			time.Second, 2 * time.Second, 3 * time.Second, 15 * time.Second},
		NotAvailable: []time.Duration{0, 0, 30 * time.Second, 60 * time.Second, 120 * time.Second,
			180 * time.Second, 600 * time.Second},
	}
}

// FastLatencyTable keeps RocketMQ's latency thresholds (they describe the
// network, not the profile) and divides the isolation windows by 60, so a
// failed send avoids its group for 10 s instead of 10 min: long enough to
// outlast the fast profile's route convergence (expiry 4 s + poll 1 s),
// short enough for a quick run to see the group come back.
func FastLatencyTable() LatencyTable { return DefaultLatencyTable().Scaled(1.0 / 60) }

// Scaled returns the table with every isolation window multiplied by f.
func (t LatencyTable) Scaled(f float64) LatencyTable {
	out := LatencyTable{LatencyMax: slices.Clone(t.LatencyMax), NotAvailable: make([]time.Duration, len(t.NotAvailable))}
	for i, d := range t.NotAvailable {
		out.NotAvailable[i] = time.Duration(float64(d) * f)
	}
	return out
}

// Validate reports whether the table is usable.
func (t LatencyTable) Validate() error {
	switch {
	case len(t.LatencyMax) == 0:
		return errors.New("nameserver: latency table is empty")
	case len(t.LatencyMax) != len(t.NotAvailable):
		return fmt.Errorf("nameserver: latency table has %d thresholds and %d windows", len(t.LatencyMax), len(t.NotAvailable))
	case !slices.IsSorted(t.LatencyMax):
		return errors.New("nameserver: latency thresholds must ascend")
	}
	for _, d := range t.NotAvailable {
		if d < 0 {
			return errors.New("nameserver: isolation windows must not be negative")
		}
	}
	return nil
}

// isolation returns how long a send of this latency isolates its group.
func (t LatencyTable) isolation(latency time.Duration, failed bool) time.Duration {
	if failed {
		return t.NotAvailable[len(t.NotAvailable)-1]
	}
	for i := len(t.LatencyMax) - 1; i >= 0; i-- {
		if latency >= t.LatencyMax[i] {
			return t.NotAvailable[i]
		}
	}
	return 0
}

// FaultTolerance is a producer's memory of slow and failing groups
// (RocketMQ's LatencyFaultTolerance with sendLatencyFaultEnable on). After
// every send the producer calls Update; before choosing a queue it skips
// groups that are not Available (TopicRoute.WriteQueues does this). It is
// safe for concurrent use.
type FaultTolerance struct {
	table LatencyTable
	now   func() time.Time

	mu    sync.Mutex // guards until
	until map[string]time.Time
}

// NewFaultTolerance returns an empty fault memory using table.
func NewFaultTolerance(table LatencyTable) (*FaultTolerance, error) {
	if err := table.Validate(); err != nil {
		return nil, err
	}
	return &FaultTolerance{table: table, now: time.Now, until: make(map[string]time.Time)}, nil
}

// Update records a send to group that took latency and failed or not; the
// group is avoided for the window the table gives. A later update replaces
// the window, so a fast success ends an isolation early, as in RocketMQ.
func (f *FaultTolerance) Update(group string, latency time.Duration, failed bool) {
	d := f.table.isolation(latency, failed)
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		delete(f.until, group)
		return
	}
	f.until[group] = f.now().Add(d)
}

// Available reports whether producers may send to group now.
func (f *FaultTolerance) Available(group string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.until[group]
	if !ok {
		return true
	}
	if !f.now().Before(u) {
		delete(f.until, group)
		return true
	}
	return false
}

// Isolated returns the groups avoided now with the time each becomes
// available again.
func (f *FaultTolerance) Isolated() map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	out := make(map[string]time.Time)
	for g, u := range f.until {
		if now.Before(u) {
			out[g] = u
		}
	}
	return out
}
