package nodes

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/internal/poll"
)

// BrokerName is the node name of broker id in fault targets and reports.
func BrokerName(id int32) string { return "broker " + strconv.Itoa(int(id)) }

// MemberName is the node name of member i of a role ("etcd 0",
// "nameserver 1"): the role's target word and the index, as fault targets
// write it.
func MemberName(role string, i int) string { return role + " " + strconv.Itoa(i) }

// BrokerID parses a node name made by BrokerName.
func BrokerID(node string) (int32, bool) {
	s, ok := strings.CutPrefix(node, "broker ")
	if !ok || strings.Contains(s, ",") {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return int32(n), err == nil
}

// WatchLive polls live (the broker ids the control plane considers alive,
// nil when it cannot tell) every interval until ctx ends, and records in d
// when each broker drops out: the detection time of a fault.
func WatchLive(ctx context.Context, interval time.Duration, live func(ctx context.Context) []int32, d *Departures) {
	prev := map[int32]bool{}
	poll.Every(ctx, interval, nil, func(time.Time) {
		ids := live(ctx)
		if ids == nil {
			return
		}
		now := map[int32]bool{}
		for _, id := range ids {
			now[id] = true
		}
		for id := range prev {
			if !now[id] {
				d.Record(id, time.Now())
			}
		}
		prev = now
	})
}

// Departures records when the control plane dropped each broker, so that a
// runtime can answer Deployment.Detected. The zero value is ready to use.
type Departures struct {
	mu sync.Mutex
	at map[int32][]time.Time
}

// Record notes that the control plane dropped broker id at at.
func (d *Departures) Record(id int32, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at == nil {
		d.at = map[int32][]time.Time{}
	}
	d.at[id] = append(d.at[id], at)
}

// Detected returns the first departure of the broker named node at or
// after since, or zero.
func (d *Departures) Detected(node string, since time.Time) time.Time {
	id, ok := BrokerID(node)
	if !ok {
		return time.Time{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, at := range d.at[id] {
		if !at.Before(since) {
			return at
		}
	}
	return time.Time{}
}
