package memplane_test

import (
	"context"
	"fmt"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/memplane"
)

func Example() {
	plane := memplane.New(memplane.Options{ClusterID: "demo"})
	defer plane.Close()
	for id := int32(1); id <= 3; id++ {
		// Each broker registers through its own handle (broker.New does this
		// in Start); here the views are simply dropped.
		plane.Handle().Register(context.Background(), broker.BrokerInfo{ID: id}, func(broker.ClusterView) {})
	}
	plane.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 3})
	st, _ := plane.State("t", 0)
	fmt.Println("leader", st.Leader, "epoch", st.LeaderEpoch, "isr", st.ISR)

	plane.Failover(st.Leader) // what the controller does when broker 1 dies
	st, _ = plane.State("t", 0)
	fmt.Println("leader", st.Leader, "epoch", st.LeaderEpoch, "isr", st.ISR)

	plane.SetLeader("t", 0, 3) // or move leadership by hand
	st, _ = plane.State("t", 0)
	fmt.Println("leader", st.Leader, "epoch", st.LeaderEpoch, "isr", st.ISR)
	// Output:
	// leader 1 epoch 0 isr [1 2 3]
	// leader 2 epoch 1 isr [2 3]
	// leader 3 epoch 2 isr [2 3]
}
