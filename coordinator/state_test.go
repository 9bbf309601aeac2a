package coordinator

import (
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/brokerlab/brokerlab/broker"
)

func kv(key, value string, rev, lease int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value), CreateRevision: rev, ModRevision: rev, Lease: lease}
}

func TestStateView(t *testing.T) {
	k := newKeys("/c")
	s := newState(k)
	ps := broker.PartitionState{Topic: "t", Partition: 0, Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1, 2}}
	errs := s.reset([]*mvccpb.KeyValue{
		kv("/c/cluster-id", "abc", 1, 0),
		kv("/c/brokers/2", encodeBroker(broker.BrokerInfo{ID: 2, Addr: "h:2"}), 2, 7),
		kv("/c/brokers/1", encodeBroker(broker.BrokerInfo{ID: 1, Addr: "h:1", Rack: "a"}), 3, 8),
		kv("/c/controller/8", "1", 5, 8),
		kv("/c/controller/7", "2", 4, 7),
		kv("/c/topics/t", encodeTopic(broker.TopicConfig{Name: "t", Partitions: 2, ReplicationFactor: 2}), 6, 0),
		kv("/c/partitions/t/0", encodePartition(ps), 7, 0),
		kv("/c/brokers/x", "{}", 8, 0),        // bad id: skipped
		kv("/c/brokers/3", `{"id":4}`, 9, 0),  // id mismatch: skipped
		kv("/c/elsewhere", "x", 10, 0),        // unknown: skipped
		kv("/c/partitions/t/-1", "{}", 11, 0), // bad partition: skipped
	}, 11)
	if len(errs) != 4 {
		t.Fatalf("decode errors %v, want 4", errs)
	}
	v := s.view()
	if v.ClusterID != "abc" || v.ControllerID != 2 || len(v.Brokers) != 2 || v.Brokers[0].ID != 1 || v.Brokers[0].Rack != "a" {
		t.Fatalf("view %+v", v)
	}
	if len(v.Topics) != 0 {
		t.Fatalf("topic with one of two partitions is in the view: %+v", v.Topics)
	}
	ps1 := ps
	ps1.Partition = 1
	s.apply([]*mvccpb.Event{
		{Type: mvccpb.Event_PUT, Kv: kv("/c/partitions/t/1", encodePartition(ps1), 12, 0)},
		{Type: mvccpb.Event_DELETE, Kv: kv("/c/controller/7", "", 12, 0)},
		nil,
		{Type: mvccpb.Event_PUT},
	}, 12)
	v = s.view()
	tv, ok := v.Topic("t")
	if !ok || len(tv.Partitions) != 2 || tv.Partitions[1].Version != 12 || tv.Partitions[0].Version != 7 || v.ControllerID != 1 {
		t.Fatalf("view after events %+v", v)
	}
	// A delivered view never changes afterwards: a later change replaces
	// what the state holds and builds new lists, it does not write into
	// the ones views share.
	ps2 := ps1
	ps2.ISR = []int32{1}
	s.apply([]*mvccpb.Event{{Type: mvccpb.Event_PUT, Kv: kv("/c/partitions/t/1", encodePartition(ps2), 13, 0)}}, 13)
	if tv.Partitions[1].Version != 12 || !slices.Equal(tv.Partitions[1].ISR, []int32{1, 2}) {
		t.Fatalf("a delivered view changed: %+v", tv.Partitions[1])
	}
	again, _ := s.view().Topic("t")
	if again.Partitions[1].Version != 13 || !slices.Equal(again.Partitions[1].ISR, []int32{1}) {
		t.Fatalf("view after the ISR change %+v", again.Partitions[1])
	}
	// Unchanged topics, names and replica sets are shared, not copied.
	if &again.Partitions[0].Replicas[0] != &again.Partitions[1].Replicas[0] || &again.Partitions[0].ISR[0] != &again.Partitions[0].Replicas[0] {
		t.Fatal("equal replica sets are not shared")
	}
	if next, _ := s.view().Topic("t"); &next.Partitions[0] != &again.Partitions[0] {
		t.Fatal("an unchanged topic's partitions were built again")
	}
	// The controller must be a live broker to be reported.
	s.apply([]*mvccpb.Event{{Type: mvccpb.Event_DELETE, Kv: kv("/c/brokers/1", "", 14, 0)}}, 14)
	if v := s.view(); v.ControllerID != -1 {
		t.Fatalf("controller %d without its registration", v.ControllerID)
	}
	// A bad value replaces what was stored under the key.
	s.apply([]*mvccpb.Event{{Type: mvccpb.Event_PUT, Kv: kv("/c/partitions/t/1", "garbage", 14, 0)}}, 14)
	if _, ok := s.view().Topic("t"); ok {
		t.Fatal("topic with an undecodable partition is in the view")
	}
}

// TestStateDeletedTopics: deleted-topics/ markers are the view's
// DeletedTopics, sorted, except a name whose topic exists again.
func TestStateDeletedTopics(t *testing.T) {
	s := newState(newKeys("/c"))
	s.reset([]*mvccpb.KeyValue{
		kv("/c/deleted-topics/z", "", 1, 0),
		kv("/c/deleted-topics/a", "", 2, 0),
		kv("/c/deleted-topics/t", "", 3, 0),
		kv("/c/topics/t", `{"name":"t","partitions":1,"replication_factor":1}`, 4, 0),
		kv("/c/partitions/t/0", `{"replicas":[1],"leader":1,"isr":[1]}`, 5, 0),
	}, 5)
	if v := s.view(); !slices.Equal(v.DeletedTopics, []string{"a", "z"}) {
		t.Fatalf("deleted topics %v, want [a z]", v.DeletedTopics)
	}
	s.apply([]*mvccpb.Event{{Type: mvccpb.Event_DELETE, Kv: kv("/c/deleted-topics/z", "", 6, 0)}}, 6)
	if v := s.view(); !slices.Equal(v.DeletedTopics, []string{"a"}) {
		t.Fatalf("after the marker's removal: deleted topics %v, want [a]", v.DeletedTopics)
	}
}

func TestKeysParse(t *testing.T) {
	k := newKeys("/p")
	for key, want := range map[string]parsedKey{
		"/p/cluster-id":         {kind: kindClusterID},
		"/p/brokers/12":         {kind: kindBroker, brokerID: 12},
		"/p/controller/abc":     {kind: kindCandidate, name: "abc"},
		"/p/topics/a.b-c_d":     {kind: kindTopic, name: "a.b-c_d"},
		"/p/partitions/x/3":     {kind: kindPartition, name: "x", partition: 3},
		"/p/partitions/x.y/10":  {kind: kindPartition, name: "x.y", partition: 10},
		"/p/deleted-topics/x.y": {kind: kindDeleted, name: "x.y"},
	} {
		got, err := k.parse(key)
		if err != nil || got != want {
			t.Errorf("parse(%q) = %+v, %v; want %+v", key, got, err, want)
		}
	}
	for _, key := range []string{"/q/brokers/1", "/p/brokers/01", "/p/brokers/-1", "/p/brokers/99999999999",
		"/p/topics/a/b", "/p/topics/..", "/p/partitions/x", "/p/partitions/x/+1", "/p/other", "/p/deleted-topics/..", "/p/deleted-topics/a/b"} {
		if got, err := k.parse(key); err == nil {
			t.Errorf("parse(%q) = %+v, want an error", key, got)
		}
	}
}

// FuzzState feeds arbitrary keys and values to the cache: it must never
// panic, and every view it builds must be complete and self-consistent.
func FuzzState(f *testing.F) {
	f.Add("brokers/1", []byte(`{"id":1,"addr":"h:1"}`), int64(5), false)
	f.Add("topics/t", []byte(`{"name":"t","partitions":2,"replication_factor":1}`), int64(0), false)
	f.Add("partitions/t/1", []byte(`{"replicas":[1],"leader":1,"isr":[1]}`), int64(0), false)
	f.Add("controller/5", []byte("1"), int64(5), false)
	f.Add("cluster-id", []byte("x"), int64(0), true)
	f.Add("partitions/t/0", []byte(`{"replicas":null,"isr":[1,1,1]}`), int64(0), false)
	f.Fuzz(func(t *testing.T, suffix string, value []byte, lease int64, del bool) {
		k := newKeys("/f")
		s := newState(k)
		seed := []*mvccpb.KeyValue{
			kv("/f/topics/t", `{"name":"t","partitions":2,"replication_factor":1}`, 1, 0),
			kv("/f/partitions/t/0", `{"replicas":[1],"leader":1,"isr":[1]}`, 2, 0),
			kv("/f/brokers/1", `{"id":1,"addr":"h:1"}`, 3, 9),
		}
		s.reset(seed, 3)
		ev := &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("/f/" + suffix), Value: value, Lease: lease, CreateRevision: 4, ModRevision: 4}}
		if del {
			ev.Type = mvccpb.Event_DELETE
		}
		s.apply([]*mvccpb.Event{ev}, 4)
		v := s.view()
		for _, tv := range v.Topics {
			if int(tv.Config.Partitions) != len(tv.Partitions) {
				t.Fatalf("topic %q has %d of %d partitions", tv.Config.Name, len(tv.Partitions), tv.Config.Partitions)
			}
			for i, ps := range tv.Partitions {
				if ps.Topic != tv.Config.Name || ps.Partition != int32(i) {
					t.Fatalf("partition %d of %q is %s/%d", i, tv.Config.Name, ps.Topic, ps.Partition)
				}
			}
		}
		if !slices.IsSortedFunc(v.Brokers, func(a, b broker.BrokerInfo) int { return int(a.ID) - int(b.ID) }) {
			t.Fatalf("brokers not sorted: %+v", v.Brokers)
		}
		// The controller logic must survive whatever is stored.
		s.eachPartition(func(_ string, ps broker.PartitionState) {
			decide(ps, func(id int32) bool { return id%2 == 0 }, lease%2 == 0)
		})
		_ = loadOf(s)
	})
}
