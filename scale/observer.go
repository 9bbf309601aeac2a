package scale

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

// observer collects, from every node's views, when each node first saw what
// the sweep waits for: a new topic with a leader for every partition, a
// killed broker gone, a new leader for each partition the killed broker led.
// Per node it keeps only the few partitions being watched, never a view.
type observer struct {
	mu    sync.Mutex
	nodes map[int32]bool // running nodes, the ones a watch waits for

	topic *topicWatch
	fail  *failWatch
	// led: the partitions each broker leads in the newest view any node
	// delivered, for picking a victim; refreshed on demand.
	last broker.ClusterView
}

type topicWatch struct {
	name  string
	since time.Time
	seen  map[int32]time.Duration
}

type failWatch struct {
	victim   int32
	since    time.Time
	parts    []tp                     // partitions the victim led
	gone     map[int32]time.Duration  // node -> when its view lost the victim
	moved    map[int32]map[tp]bool    // node -> partitions it saw with a new leader
	movedAll map[tp]map[int32]float64 // partition -> node -> seconds
}

type tp struct {
	topic string
	part  int32
}

func newObserver() *observer { return &observer{nodes: map[int32]bool{}} }

func (o *observer) setRunning(id int32, up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if up {
		o.nodes[id] = true
	} else {
		delete(o.nodes, id)
	}
}

func (o *observer) sawView(id int32, at time.Time, v broker.ClusterView) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(v.Topics) >= len(o.last.Topics) {
		o.last = v
	}
	if w := o.topic; w != nil {
		if _, done := w.seen[id]; !done {
			if t, ok := v.Topic(w.name); ok && allLed(t) {
				w.seen[id] = at.Sub(w.since)
			}
		}
	}
	if w := o.fail; w != nil && id != w.victim {
		if _, done := w.gone[id]; !done {
			if _, ok := v.Broker(w.victim); !ok {
				w.gone[id] = at.Sub(w.since)
			}
		}
		moved := w.moved[id]
		if moved == nil {
			moved = map[tp]bool{}
			w.moved[id] = moved
		}
		for _, k := range w.parts {
			if moved[k] {
				continue
			}
			if p, ok := partitionOf(v, k); ok && p.Leader >= 0 && p.Leader != w.victim {
				moved[k] = true
				if w.movedAll[k] == nil {
					w.movedAll[k] = map[int32]float64{}
				}
				w.movedAll[k][id] = at.Sub(w.since).Seconds()
			}
		}
	}
}

func allLed(t broker.TopicView) bool {
	if len(t.Partitions) == 0 || int32(len(t.Partitions)) != t.Config.Partitions {
		return false
	}
	for _, p := range t.Partitions {
		if p.Leader < 0 {
			return false
		}
	}
	return true
}

func partitionOf(v broker.ClusterView, k tp) (broker.PartitionState, bool) {
	t, ok := v.Topic(k.topic)
	if !ok || int(k.part) >= len(t.Partitions) {
		return broker.PartitionState{}, false
	}
	return t.Partitions[k.part], true
}

// watchTopic starts timing a topic's propagation.
func (o *observer) watchTopic(name string, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.topic = &topicWatch{name: name, since: since, seen: map[int32]time.Duration{}}
}

// topicDone reports how many running nodes have not seen the watched topic.
func (o *observer) topicMissing() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for id := range o.nodes {
		if _, ok := o.topic.seen[id]; !ok {
			n++
		}
	}
	return n
}

// topicTimes returns the per-node propagation times in seconds.
func (o *observer) topicTimes() []float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]float64, 0, len(o.topic.seen))
	for _, d := range o.topic.seen {
		out = append(out, d.Seconds())
	}
	slices.Sort(out)
	return out
}

// busiest returns the broker that leads the most partitions in the newest
// view, and those partitions.
func (o *observer) busiest(exclude int32) (int32, []tp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	led := map[int32][]tp{}
	for _, t := range o.last.Topics {
		for _, p := range t.Partitions {
			if p.Leader >= 0 && p.Leader != exclude {
				led[p.Leader] = append(led[p.Leader], tp{t.Config.Name, p.Partition})
			}
		}
	}
	best := int32(-1)
	for id, ps := range led {
		if best < 0 || len(ps) > len(led[best]) || (len(ps) == len(led[best]) && id < best) {
			best = id
		}
	}
	return best, led[best]
}

func (o *observer) watchFailure(victim int32, parts []tp, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fail = &failWatch{victim: victim, since: since, parts: parts,
		gone: map[int32]time.Duration{}, moved: map[int32]map[tp]bool{}, movedAll: map[tp]map[int32]float64{}}
}

// failureProgress reports how many running nodes still list the victim, and
// how many (node, partition) pairs still lack a new leader.
func (o *observer) failureProgress() (listing, unmoved int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.fail
	for id := range o.nodes {
		if id == w.victim {
			continue
		}
		if _, ok := w.gone[id]; !ok {
			listing++
		}
		unmoved += len(w.parts) - len(w.moved[id])
	}
	return listing, unmoved
}

// failureTimes returns detection (first node whose view lost the victim),
// removal from every view, and per partition the time until every running
// node saw it with a new leader (partitions some node never saw move are
// left out and counted in missing).
func (o *observer) failureTimes() (detect, removed float64, reelect []float64, missing int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.fail
	detect = -1
	for _, d := range w.gone {
		s := d.Seconds()
		if detect < 0 || s < detect {
			detect = s
		}
		removed = max(removed, s)
	}
	for _, k := range w.parts {
		times := w.movedAll[k]
		worst, all := 0.0, true
		for id := range o.nodes {
			if id == w.victim {
				continue
			}
			s, ok := times[id]
			if !ok {
				all = false
				break
			}
			worst = max(worst, s)
		}
		if all {
			reelect = append(reelect, worst)
		} else {
			missing++
		}
	}
	slices.Sort(reelect)
	return detect, removed, reelect, missing
}

func itoa(i int) string { return strconv.Itoa(i) }
