package coordinator

import (
	"fmt"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestKindOf(t *testing.T) {
	for method, want := range map[string]string{
		"/etcdserverpb.Lease/LeaseKeepAlive":  KindKeepAlive,
		"/etcdserverpb.Lease/LeaseGrant":      KindLeaseGrant,
		"/etcdserverpb.Lease/LeaseRevoke":     KindLeaseRevoke,
		"/etcdserverpb.Lease/LeaseTimeToLive": KindLeaseTTL,
		"/etcdserverpb.Watch/Watch":           KindWatch,
		"/etcdserverpb.KV/Range":              KindGet,
		"/etcdserverpb.KV/Put":                KindPut,
		"/etcdserverpb.KV/DeleteRange":        KindDelete,
		"/etcdserverpb.KV/Txn":                KindTxn,
		"/etcdserverpb.Maintenance/Status":    KindOther,
		"":                                    KindOther,
	} {
		if got := kinds[kindOf(method)]; got != want {
			t.Errorf("kindOf(%q) = %s, want %s", method, got, want)
		}
	}
}

func TestStatsCountTraffic(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 2, nil)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 4, ReplicationFactor: 2})
	s0 := hs[1].p.Stats()
	// Keep-alives go out every third of the 1 s TTL (in 500 ms steps).
	testutil.Eventually(t, 5*time.Second, func() error {
		d := hs[1].p.Stats().Sub(s0)
		if ka := d.ByKind[KindKeepAlive]; ka.Requests < 2 || ka.Responses < 2 || ka.BytesSent == 0 || ka.BytesReceived == 0 {
			return fmt.Errorf("keep-alives %+v", ka)
		}
		return nil
	})
	s := hs[0].p.Stats()
	for _, k := range []string{KindLeaseGrant, KindPut, KindTxn, KindGet, KindWatch} {
		if c := s.ByKind[k]; c.Requests == 0 || c.Responses == 0 {
			t.Errorf("%s: %+v", k, c)
		}
	}
	if s.WatchEvents == 0 {
		t.Error("no watch events counted")
	}
	sum := SumStats(hs[0].p, nil, hs[1].p)
	if tot := sum.Total(); tot.Requests < s.Total().Requests || tot.BytesSent == 0 {
		t.Fatalf("sum %+v", tot)
	}
	if z := s.Sub(s).Total(); z != (Counter{}) {
		t.Fatalf("s - s = %+v", z)
	}
}
