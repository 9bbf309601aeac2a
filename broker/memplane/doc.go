// Package memplane is an in-memory broker.ControlPlane: one Plane holds the
// cluster state (live brokers, topics, partition states) of an in-process
// cluster and plays its controller, and each broker gets its own Handle.
// Tests drive it directly to move leadership and change ISRs. (Standalone
// mode does not use it: package standalone is its own one-node plane, with
// its state persisted in the data directory.)
//
// Semantics, modelled on a Kafka controller:
//   - Register adds a broker to the live set; views are delivered to it
//     serially, newest first, from a goroutine of its handle.
//   - Handle.Close is a crash: the broker leaves the live set but keeps its
//     leaderships unless Options.AutoFailover is set; Plane.Failover does what
//     the controller does on a broker's death. Handle.Deregister is a
//     controlled shutdown that hands leaderships over first.
//   - A broker that registers takes leaderless partitions it may lead.
//   - The controller is the live broker with the lowest id.
//   - A deleted topic is announced in DeletedTopics of every later view
//     until it is created again.
//   - Every state change gives the partition a new Version; AlterISR checks
//     leader epoch (ErrFenced) and Version (ErrStaleState).
//
// The plane is called in-process, so faultnet faults do not reach it: an
// isolated broker still talks to its control plane.
//
// Example:
//
//	plane := memplane.New(memplane.Options{})
//	defer plane.Close()
//	b1, _ := broker.New(cfg1, plane.Handle())
//	b2, _ := broker.New(cfg2, plane.Handle())
//	// ... start both, then:
//	plane.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 2})
//	st, _ := plane.State("t", 0)
//	b1.Kill()                    // crash: st.Leader stays
//	plane.Failover(st.Leader)    // the controller reacts
//	plane.SetLeader("t", 0, 1)   // or move leadership by hand
package memplane
