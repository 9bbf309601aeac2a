package analysis

import (
	"reflect"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func TestFaultScope(t *testing.T) {
	pl := map[string][]int32{"broker 0": {0, 1}, "broker 1": {1, 2}, "broker 2": {}}
	for _, tc := range []struct {
		ev   FaultEvent
		all  bool
		want []int32
	}{
		{FaultEvent{Target: "controller", Node: "broker 0", Placement: pl}, true, nil},
		{FaultEvent{Target: "etcd 0", Node: "etcd 0", Placement: pl}, true, nil},
		{FaultEvent{Target: "nameserver", Node: "nameserver 0,nameserver 1", Placement: pl}, true, nil},
		{FaultEvent{Target: "all", Action: scenario.ActionHeal, Node: "all", Placement: pl}, true, nil},
		{FaultEvent{Target: "leader-of t/1", Node: "broker 1", Placement: pl}, false, []int32{1, 2}},
		{FaultEvent{Target: "killed", Node: "broker 2", Placement: pl}, false, nil},
		{FaultEvent{Target: "broker 0 - broker 1", Node: "broker 0 - broker 1", Placement: pl}, false, []int32{1}},
		{FaultEvent{Target: "broker 0 - etcd", Node: "broker 0 - etcd 0", Placement: pl}, false, []int32{0, 1}},
		{FaultEvent{Target: "leader-of t/1", Node: "broker 1"}, true, nil},                       // no placement
		{FaultEvent{Target: "broker 1", Placement: pl}, false, []int32{1, 2}},                    // not resolved
		{FaultEvent{Target: "broker 1", Err: "skipped: no broker 1", Placement: pl}, false, nil}, // never applied
	} {
		sc := faultScope(tc.ev)
		var got []int32
		for p := range int32(4) {
			if sc.has(p) && !sc.all {
				got = append(got, p)
			}
		}
		if sc.all != tc.all || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: all %v parts %v, want all %v parts %v", tc.ev, sc.all, got, tc.all, tc.want)
		}
	}
}
