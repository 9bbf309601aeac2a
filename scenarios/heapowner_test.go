package scenarios

import (
	"runtime"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

func TestFunctionOwner(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/brokerlab/brokerlab/broker.(*Broker).handleProduce":       analysis.OwnerNodes,
		"github.com/nats-io/nats-server/v2/server.(*stream).processInbound":   analysis.OwnerNodes,
		"go.etcd.io/etcd/server/v3/etcdserver.(*EtcdServer).apply":            analysis.OwnerNodes,
		"github.com/segmentio/kafka-go.(*Writer).produce":                     analysis.OwnerClients,
		"github.com/nats-io/nats.go.(*Conn).PublishMsg":                       analysis.OwnerClients,
		"github.com/brokerlab/brokerlab/scenarios/jetstream.(*pubRun).newMsg": analysis.OwnerClients,
		"github.com/brokerlab/brokerlab/faultnet.(*conn).receiveLoop":         analysis.OwnerLinks,
		"github.com/brokerlab/brokerlab/scenarios.(*stepRun).execute":         "",
		"runtime.mallocgc": "",
	} {
		if got := functionOwner(fn); got != want {
			t.Errorf("%s: owner %q, want %q", fn, got, want)
		}
	}
}

var heapOwnerSink [][]byte

// Memory the test itself holds is the runner's, and the shares add up to
// about the live heap.
func TestHeapByOwner(t *testing.T) {
	for range 64 {
		heapOwnerSink = append(heapOwnerSink, make([]byte, 1<<20))
	}
	defer func() { heapOwnerSink = nil }()
	runtime.GC()
	shares := heapByOwner()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var total, runner int64
	for _, s := range shares {
		total += s.Bytes
		if s.Owner == analysis.OwnerRunner {
			runner = s.Bytes
		}
	}
	if runner < 60<<20 {
		t.Errorf("runner share %d bytes, want at least the 64 MiB the test holds (%v)", runner, shares)
	}
	if total > int64(ms.HeapAlloc)*2 || total < 60<<20 {
		t.Errorf("shares total %d bytes, live heap %d", total, ms.HeapAlloc)
	}
}
