// Package brokertest runs a cluster of real brokers inside a test, in the
// spirit of nats-server's createJetStreamClusterExplicit and etcd's
// integration.NewCluster: loopback ports, data dirs under t.TempDir() (kept
// per broker id across restarts), logs routed to t.Log, every connection
// between brokers dialed through a faultnet.Network, and t.Cleanup closing
// everything.
//
// By default the brokers share one memplane.Plane (Cluster.Plane), which the
// test drives: a Kill is only a crash, and the controller's reaction is a
// separate, explicit Plane.Failover. WithControlPlane plugs in another
// control plane (coordinator, nameserver).
//
// Example:
//
//	func TestLeaderKill(t *testing.T) {
//		c := brokertest.New(t, brokertest.Brokers(3))
//		c.CreateTopic(t, broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 3, MinInsync: 2})
//		client := &kafka.Transport{Dial: c.Net.Dialer("client")}
//		// ... produce through client to c.Addrs() ...
//		old := c.LeaderOf("t", 0)
//		c.Kill(old)
//		c.Plane.Failover(old)
//		c.WaitLeader("t", 0)
//		c.Net.Cut(brokertest.Name(1), brokertest.Name(2))
//		c.Restart(old)
//		c.WaitISR("t", 0, old)
//	}
package brokertest
