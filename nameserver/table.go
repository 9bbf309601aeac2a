package nameserver

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
)

// groupKey identifies a broker group.
type groupKey struct{ Cluster, Group string }

// groupMembers are a group's registrations, by broker id (master first).
type groupMembers struct {
	key     groupKey
	members []*member
}

func (g groupMembers) info() GroupInfo {
	gi := GroupInfo{Cluster: g.key.Cluster, Group: g.key.Group, Members: make([]Member, len(g.members))}
	for i, m := range g.members {
		gi.Members[i] = m.info()
	}
	return gi
}

func (g groupMembers) hasMaster() bool {
	return len(g.members) > 0 && g.members[0].BrokerID == MasterID
}

// groupsLocked returns every group, by cluster and name. Lock should be held.
func (s *Server) groupsLocked() []groupMembers {
	idx := make(map[groupKey]int)
	var gs []groupMembers
	for _, m := range s.members {
		k := groupKey{m.Cluster, m.Group}
		i, ok := idx[k]
		if !ok {
			i = len(gs)
			idx[k] = i
			gs = append(gs, groupMembers{key: k})
		}
		gs[i].members = append(gs[i].members, m)
	}
	slices.SortFunc(gs, func(a, b groupMembers) int {
		return cmp.Or(cmp.Compare(a.key.Cluster, b.key.Cluster), cmp.Compare(a.key.Group, b.key.Group))
	})
	for _, g := range gs {
		slices.SortFunc(g.members, func(a, b *member) int { return cmp.Compare(a.BrokerID, b.BrokerID) })
	}
	return gs
}

func (s *Server) clusterInfo() ClusterInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	gs := s.groupsLocked()
	ci := ClusterInfo{Groups: make([]GroupInfo, len(gs))}
	for i, g := range gs {
		ci.Groups[i] = g.info()
	}
	return ci
}

// snapshot answers a broker's poll: everything, with routes stripped of
// their members, or only "unchanged" when the broker has the current
// version of this very server.
func (s *Server) snapshot(req snapshotRequest) snapshotReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := snapshotReply{Epoch: s.epoch, Version: s.version}
	if req.Epoch == s.epoch && req.Version == s.version {
		reply.Unchanged = true
		s.snapshotsUnchanged.Add(1)
		return reply
	}
	reply.Routes = s.routesLocked(nil).Routes
	for i := range reply.Routes {
		for j := range reply.Routes[i].Groups {
			reply.Routes[i].Groups[j].Members = nil
		}
	}
	gs := s.groupsLocked()
	reply.Info.Groups = make([]GroupInfo, len(gs))
	for i, g := range gs {
		reply.Info.Groups[i] = g.info()
	}
	return reply
}

// routes answers a route query: the named topics, or all when names is
// empty.
func (s *Server) routes(names []string) routeReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routesLocked(names)
}

// routesLocked builds routes. A group's part of a topic comes from its
// master's registration when the master has the topic, else from its
// lowest-id member that has it, so a topic stays routable through the
// slaves while the master is away. Lock should be held.
func (s *Server) routesLocked(names []string) routeReply {
	var want map[string]bool
	if len(names) > 0 {
		want = make(map[string]bool, len(names))
		for _, n := range names {
			want[n] = true
		}
	}
	byTopic := make(map[string]*TopicRoute)
	for _, g := range s.groupsLocked() {
		gi := g.info()
		seen := make(map[string]bool)
		for _, m := range g.members {
			for name, t := range m.topics {
				if seen[name] || (want != nil && !want[name]) {
					continue
				}
				seen[name] = true
				r, ok := byTopic[name]
				if !ok {
					r = &TopicRoute{Topic: name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor,
						MinInsync: t.MinInsync, Fanout: t.Fanout}
					byTopic[name] = r
				}
				r.Groups = append(r.Groups, GroupRoute{GroupInfo: gi, Queues: t.Queues, FirstPartition: t.FirstPartition})
			}
		}
	}
	var reply routeReply
	for _, r := range byTopic {
		slices.SortFunc(r.Groups, func(a, b GroupRoute) int { return cmp.Compare(a.FirstPartition, b.FirstPartition) })
		reply.Routes = append(reply.Routes, *r)
	}
	slices.SortFunc(reply.Routes, func(a, b TopicRoute) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, n := range names {
		if _, ok := byTopic[n]; !ok {
			reply.Missing = append(reply.Missing, n)
		}
	}
	return reply
}

// hasTopicLocked reports whether any registration carries the topic. Lock
// should be held.
func (s *Server) hasTopicLocked(name string) bool {
	for _, m := range s.members {
		if _, ok := m.topics[name]; ok {
			return true
		}
	}
	return false
}

// pushTarget is one broker a topic change is pushed to.
type pushTarget struct {
	key    memberKey
	peer   *peer
	master bool
	topic  GroupTopic
}

// createTopic places a topic over the cluster's groups that have a master
// registered here, pushes each group's part to the group's registered
// members, and records it for the members that acknowledged, so the route
// is visible here at once and elsewhere after the brokers' next
// registration.
func (s *Server) createTopic(ctx context.Context, req CreateTopicRequest) (TopicRoute, error) {
	name := req.Config.Name
	if err := validTopicName(name); err != nil {
		return TopicRoute{}, err
	}
	s.mu.Lock()
	if s.hasTopicLocked(name) || s.creating[name] {
		s.mu.Unlock()
		return TopicRoute{}, fmt.Errorf("%w: %q", broker.ErrTopicExists, name)
	}
	targets, err := s.placeLocked(req)
	if err != nil {
		s.mu.Unlock()
		return TopicRoute{}, err
	}
	s.creating[name] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.creating, name)
		s.mu.Unlock()
	}()

	acked, err := s.push(ctx, targets, typeTopicConfig, func(t pushTarget) any { return topicConfigPush{Topic: t.topic} })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range acked {
		if m, ok := s.members[t.key]; ok && m.peer == t.peer {
			m.topics[name] = t.topic
			s.version++
		}
	}
	if err != nil {
		return TopicRoute{}, err
	}
	s.log.Info("topic created", "topic", name, "partitions", targets[0].topic.Partitions, "groups", countMasters(targets))
	r := s.routesLocked([]string{name})
	if len(r.Routes) == 0 { // every member left since the push
		return TopicRoute{}, fmt.Errorf("%w: topic %q: its groups left", broker.ErrNotEnoughBrokers, name)
	}
	return r.Routes[0], nil
}

func countMasters(ts []pushTarget) int {
	n := 0
	for _, t := range ts {
		if t.master {
			n++
		}
	}
	return n
}

// placeLocked chooses the groups and queues of a new topic and returns the
// brokers to push each group's part to. Lock should be held.
//
// Groups are those of the cluster with a registered master (or the ones
// named), sorted by name and rotated by a hash of the topic name so that
// small topics do not all start on the same group. Partitions are numbered
// globally: the i-th chosen group gets the i-th contiguous range.
func (s *Server) placeLocked(req CreateTopicRequest) ([]pushTarget, error) {
	cfg := req.Config
	if req.QueuesPerGroup < 0 || (req.QueuesPerGroup == 0 && cfg.Partitions <= 0) {
		return nil, fmt.Errorf("%w: topic %q: partitions %d, queues per group %d",
			broker.ErrInvalidTopic, cfg.Name, cfg.Partitions, req.QueuesPerGroup)
	}
	if cfg.MinInsync < 0 {
		return nil, fmt.Errorf("%w: topic %q: min insync %d", broker.ErrInvalidTopic, cfg.Name, cfg.MinInsync)
	}
	all := s.groupsLocked()
	cluster := req.Cluster
	if cluster == "" {
		for _, g := range all {
			if cluster != "" && g.key.Cluster != cluster {
				return nil, fmt.Errorf("%w: topic %q: several clusters known, name one", broker.ErrInvalidTopic, cfg.Name)
			}
			cluster = g.key.Cluster
		}
	}
	var groups []groupMembers
	for _, g := range all {
		if g.key.Cluster != cluster || !g.hasMaster() {
			continue
		}
		if len(req.Groups) > 0 && !slices.Contains(req.Groups, g.key.Group) {
			continue
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 || (len(req.Groups) > 0 && len(groups) < len(req.Groups)) {
		return nil, fmt.Errorf("%w: topic %q: %d group(s) with a registered master in cluster %q",
			broker.ErrNotEnoughBrokers, cfg.Name, len(groups), cluster)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(cfg.Name))
	rot := int(h.Sum32() % uint32(len(groups)))
	groups = append(groups[rot:], groups[:rot]...)

	queues := spread(cfg.Partitions, req.QueuesPerGroup, len(groups))
	total := int32(0)
	for _, q := range queues {
		total += q
	}
	var targets []pushTarget
	first := int32(0)
	for i, g := range groups {
		if queues[i] == 0 {
			break
		}
		gt := GroupTopic{Name: cfg.Name, Queues: queues[i], FirstPartition: first, Partitions: total,
			ReplicationFactor: cfg.ReplicationFactor, MinInsync: cfg.MinInsync, Fanout: cfg.Fanout}
		first += queues[i]
		for _, m := range g.members {
			targets = append(targets, pushTarget{key: memberKey{m.Cluster, m.Group, m.BrokerID},
				peer: m.peer, master: m.BrokerID == MasterID, topic: gt})
		}
	}
	return targets, nil
}

// spread returns the queue count of each of n groups: perGroup each when
// positive, else total spread evenly with the remainder on the first
// groups (and groups beyond total get none).
func spread(total, perGroup int32, n int) []int32 {
	qs := make([]int32, n)
	for i := range qs {
		switch {
		case perGroup > 0:
			qs[i] = perGroup
		default:
			qs[i] = total / int32(n)
			if int32(i) < total%int32(n) {
				qs[i]++
			}
		}
	}
	return qs
}

// push sends a request to every target in parallel and returns those that
// acknowledged. It fails when a master did not: slaves that miss a push
// learn the topic from the route later.
func (s *Server) push(ctx context.Context, targets []pushTarget, typ string, body func(pushTarget) any) ([]pushTarget, error) {
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			defer cancel()
			_, errs[i] = t.peer.call(pctx, typ, body(t), nil)
		}()
	}
	wg.Wait()
	var acked []pushTarget
	var first error
	for i, t := range targets {
		if errs[i] == nil {
			acked = append(acked, t)
			continue
		}
		s.log.Warn("push to broker failed", "type", typ, "topic", t.topic.Name, "group", t.key.Group,
			"broker-id", t.key.BrokerID, "error", errs[i])
		if t.master && first == nil {
			first = fmt.Errorf("nameserver: %s to master of group %q: %w", typ, t.key.Group, errs[i])
		}
	}
	return acked, first
}

// deleteTopic pushes the deletion to every registered broker holding the
// topic and forgets it. A broker that is away meanwhile still has the topic
// and brings it back with its next registration (so does RocketMQ's).
func (s *Server) deleteTopic(ctx context.Context, name string) error {
	s.mu.Lock()
	var targets []pushTarget
	for k, m := range s.members {
		if t, ok := m.topics[name]; ok {
			targets = append(targets, pushTarget{key: k, peer: m.peer, master: m.BrokerID == MasterID, topic: t})
		}
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return fmt.Errorf("%w: %q", broker.ErrUnknownTopic, name)
	}
	acked, err := s.push(ctx, targets, typeTopicDelete, func(pushTarget) any { return topicDeletePush{Name: name} })
	s.mu.Lock()
	for _, t := range acked {
		if m, ok := s.members[t.key]; ok && m.peer == t.peer {
			delete(m.topics, name)
			s.version++
		}
	}
	s.mu.Unlock()
	if err == nil {
		s.log.Info("topic deleted", "topic", name)
	}
	return err
}
