package jetstream

import (
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// watchInterval is how often the watcher reads every server's leadership.
// Election times are refined to the new leader's own LeaderSince, so the
// interval bounds only how late an election is noticed, not its time.
const watchInterval = 20 * time.Millisecond

// metaGroup is the key of the JetStream meta group in the leader history
// (nats-server's name for its raft group).
const metaGroup = "_meta_"

// globalAccount is the account streams live in when no accounts are
// configured.
const globalAccount = "$G"

// election is one leader taking over a raft group.
type election struct {
	at     time.Time
	leader int
}

// leaderHistory is every leader each raft group (meta, and one per stream)
// has had since the deployment started, as the servers reported it.
type leaderHistory struct {
	mu     sync.Mutex
	groups map[string][]election
}

func newLeaderHistory() *leaderHistory {
	return &leaderHistory{groups: map[string][]election{}}
}

// current returns the group's last known leader, -1 if none yet.
func (h *leaderHistory) current(group string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	es := h.groups[group]
	if len(es) == 0 {
		return -1
	}
	return es[len(es)-1].leader
}

// observe records leader as the group's leader since at, unless it already is.
func (h *leaderHistory) observe(group string, leader int, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	es := h.groups[group]
	if len(es) > 0 && es[len(es)-1].leader == leader {
		return
	}
	if len(es) > 0 && at.Before(es[len(es)-1].at) {
		at = es[len(es)-1].at // keep the history ordered
	}
	h.groups[group] = append(es, election{at: at, leader: leader})
}

// ledAt returns the groups whose leader at t was node.
func (h *leaderHistory) ledAt(node int, t time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for g, es := range h.groups {
		i := sort.Search(len(es), func(i int) bool { return es[i].at.After(t) })
		if i > 0 && es[i-1].leader == node {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// electedAfter returns the first election of the group after t of a leader
// other than node.
func (h *leaderHistory) electedAfter(group string, node int, t time.Time) (election, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.groups[group] {
		if e.at.After(t) && e.leader != node {
			return e, true
		}
	}
	return election{}, false
}

// watcher polls the servers for the leaders of the meta group and of every
// stream and records changes in a leaderHistory. It asks the servers in
// process (as a monitoring endpoint would be asked), and only the servers the
// others can see: a paused server still believes it leads.
type watcher struct {
	c       *cluster
	history *leaderHistory

	mu      sync.Mutex
	streams map[string]string // stream name -> raft group name
}

// watchStreams adds streams (name -> raft group) to watch.
func (w *watcher) watchStreams(groups map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s, g := range groups {
		w.streams[s] = g
	}
}

// run polls until stop is closed.
func (w *watcher) run(stop <-chan struct{}) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		w.poll()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// poll reads every visible server once and records new leaders. A group two
// visible servers both claim is left alone until one gives up.
func (w *watcher) poll() {
	w.mu.Lock()
	streams := make(map[string]string, len(w.streams))
	for s, g := range w.streams {
		streams[s] = g
	}
	w.mu.Unlock()

	type claim struct {
		srv   *server.Server
		count int
		idx   int
	}
	claims := map[string]*claim{}
	add := func(group string, idx int, srv *server.Server) {
		c := claims[group]
		if c == nil {
			c = &claim{}
			claims[group] = c
		}
		c.count++
		c.idx, c.srv = idx, srv
	}
	for _, n := range w.c.nodes {
		srv, ok := n.visible()
		if !ok {
			continue
		}
		standalone := !w.c.clustered()
		if standalone || srv.JetStreamIsLeader() {
			add(metaGroup, n.idx, srv)
		}
		for s := range streams {
			if standalone || srv.JetStreamIsStreamLeader(globalAccount, s) {
				add(s, n.idx, srv)
			}
		}
	}
	now := time.Now()
	for group, c := range claims {
		if c.count != 1 || w.history.current(group) == c.idx {
			continue
		}
		at := now
		raftGroup, account := metaGroup, "" // "" is the system account
		if group != metaGroup {
			raftGroup, account = streams[group], globalAccount
		}
		// LeaderSince is cleared when a leader steps down, so it is this
		// leadership's start; observe keeps it after the previous one.
		if since := leaderSince(c.srv, account, raftGroup); !since.IsZero() && since.Before(now) {
			at = since
		}
		w.history.observe(group, c.idx, at)
	}
}

// leaderSince returns when srv became leader of the raft group, zero if it
// cannot tell.
func leaderSince(srv *server.Server, account, group string) time.Time {
	if group == "" {
		return time.Time{}
	}
	st := srv.Raftz(&server.RaftzOptions{AccountFilter: account, GroupFilter: group})
	if st == nil {
		return time.Time{}
	}
	for _, groups := range *st {
		if g, ok := groups[group]; ok && g.LeaderSince != nil {
			return *g.LeaderSince
		}
	}
	return time.Time{}
}

// stretchGap is the resolution of activity logs: events closer than this
// are one stretch.
const stretchGap = time.Millisecond

// stretch is a run of events no more than stretchGap apart.
type stretch struct{ start, end time.Time }

// activity logs when a client succeeded on one partition (acks for a
// producer, deliveries for a consumer) as stretches, so that "the first
// success at or after t" can be answered for any t afterwards within
// stretchGap, in memory that grows with the gaps rather than the messages.
type activity struct {
	mu        sync.Mutex
	stretches []stretch
}

func (a *activity) mark(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.stretches)
	if n > 0 {
		last := &a.stretches[n-1]
		if !t.After(last.end) {
			return // out of order by a hair: inside the stretch already
		}
		if t.Sub(last.end) < stretchGap {
			last.end = t
			return
		}
	}
	a.stretches = append(a.stretches, stretch{start: t, end: t})
}

// firstAtOrAfter returns the first event at or after t (within stretchGap),
// zero if none.
func (a *activity) firstAtOrAfter(t time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := sort.Search(len(a.stretches), func(i int) bool { return !a.stretches[i].end.Before(t) })
	if i == len(a.stretches) {
		return time.Time{}
	}
	if s := a.stretches[i]; s.start.After(t) {
		return s.start
	}
	return t
}

// before reports whether any event happened before t.
func (a *activity) before(t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.stretches) > 0 && a.stretches[0].start.Before(t)
}

// connEvent is a client connection connecting (server >= 0) or losing its
// server (-1).
type connEvent struct {
	at     time.Time
	server int
}

// clientTrack is what one client (producer, consumer) did, for convergence.
type clientTrack struct {
	name string

	mu    sync.Mutex
	conns []connEvent
	parts map[int32]*activity
}

func newClientTrack(name string) *clientTrack {
	return &clientTrack{name: name, parts: map[int32]*activity{}}
}

func (t *clientTrack) conn(at time.Time, server int) {
	t.mu.Lock()
	t.conns = append(t.conns, connEvent{at: at, server: server})
	t.mu.Unlock()
}

// part returns the activity log of partition p.
func (t *clientTrack) part(p int32) *activity {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.parts[p]
	if a == nil {
		a = &activity{}
		t.parts[p] = a
	}
	return a
}

// serverAt returns the server the client was connected to at t, -1 if none.
func (t *clientTrack) serverAt(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := -1
	for _, e := range t.conns {
		if e.at.After(at) {
			break
		}
		s = e.server
	}
	return s
}

// reconnectedAfter returns when the client first connected to a server other
// than node after t, or back to node after losing it (a restarted node), zero
// if it has not.
func (t *clientTrack) reconnectedAfter(node int, at time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	lost := false
	for _, e := range t.conns {
		if !e.at.After(at) {
			continue
		}
		switch {
		case e.server < 0:
			lost = true
		case e.server != node || lost:
			return e.at
		}
	}
	return time.Time{}
}
