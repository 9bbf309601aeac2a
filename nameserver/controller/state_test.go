package controller

import (
	"errors"
	"slices"
	"testing"
)

func TestStateMachine(t *testing.T) {
	m := newStateMachine()
	reg := func(id int32) GroupState {
		st, err := m.apply(command{Op: opRegister, Cluster: "c", Group: "g", Broker: Broker{BrokerID: id, NodeID: id + 10, Addr: "a"}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := reg(2); st.MasterID != 2 || st.MasterEpoch != 1 || !slices.Equal(st.SyncStateSet, []int32{2}) {
		t.Fatalf("first member: %+v", st)
	}
	if st := reg(1); st.MasterID != 2 || len(st.Brokers) != 2 || st.Brokers[0].BrokerID != 1 {
		t.Fatalf("second member: %+v", st)
	}
	alter := func(master, epoch, setEpoch int32, set ...int32) (GroupState, error) {
		return m.apply(command{Op: opAlter, Cluster: "c", Group: "g", MasterID: master, MasterEpoch: epoch,
			SyncStateSetEpoch: setEpoch, SyncStateSet: set})
	}
	for _, tc := range []struct {
		name string
		err  error
		run  func() (GroupState, error)
	}{
		{"not the master", ErrFenced, func() (GroupState, error) { return alter(1, 1, 1, 1, 2) }},
		{"stale master epoch", ErrFenced, func() (GroupState, error) { return alter(2, 0, 1, 1, 2) }},
		{"stale set epoch", ErrStaleSyncStateSet, func() (GroupState, error) { return alter(2, 1, 0, 1, 2) }},
		{"set without master", ErrBadRequest, func() (GroupState, error) { return alter(2, 1, 1, 1) }},
		{"unknown member", ErrBadRequest, func() (GroupState, error) { return alter(2, 1, 1, 2, 7) }},
		{"elect at a stale epoch", ErrFenced, func() (GroupState, error) {
			return m.apply(command{Op: opElect, Cluster: "c", Group: "g", MasterEpoch: 5, NewMaster: 1})
		}},
		{"unknown group", ErrBadRequest, func() (GroupState, error) {
			return m.apply(command{Op: opElect, Cluster: "c", Group: "x"})
		}},
	} {
		if _, err := tc.run(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	st, err := alter(2, 1, 1, 2, 1, 2)
	if err != nil || !slices.Equal(st.SyncStateSet, []int32{1, 2}) || st.SyncStateSetEpoch != 2 {
		t.Fatalf("expand: %+v %v", st, err)
	}
	alive := func(id int32) bool { return id == 1 }
	if c := candidate(st, alive, false); c != 1 {
		t.Fatalf("candidate %d, want 1", c)
	}
	st, err = m.apply(command{Op: opElect, Cluster: "c", Group: "g", MasterEpoch: 1, NewMaster: 1})
	if err != nil || st.MasterID != 1 || st.MasterEpoch != 2 || !slices.Equal(st.SyncStateSet, []int32{1}) || st.SyncStateSetEpoch != 3 {
		t.Fatalf("elect: %+v %v", st, err)
	}
	// Only 2 alive, outside the set: none unless unclean.
	alive = func(id int32) bool { return id == 2 }
	st.MasterID = 1
	if c := candidate(st, alive, false); c != NoMaster {
		t.Fatalf("clean candidate %d", c)
	}
	if c := candidate(st, alive, true); c != 2 {
		t.Fatalf("unclean candidate %d", c)
	}
}
