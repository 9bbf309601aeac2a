package scenarios

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
)

// Heap owners: who holds the live heap of an in-process run.
const (
	OwnerNodes   = "nodes"   // brokers, etcd, name servers, nats-server
	OwnerClients = "clients" // the workload's producers and consumers and their client libraries
	OwnerLinks   = "links"   // the fault layer's connection buffers (faultnet pumps)
	OwnerRunner  = "runner"  // the runner, the history's side maps, everything else
)

// heapOwners maps a function name prefix to its owner. A stack belongs to
// the owner of its outermost frame that has one (the goroutine's role:
// a client's write into a link buffer is the client's), else to the runner.
var heapOwners = []struct{ prefix, owner string }{
	{"github.com/brokerlab/brokerlab/broker", OwnerNodes},
	{"github.com/brokerlab/brokerlab/coordinator", OwnerNodes},
	{"github.com/brokerlab/brokerlab/nameserver", OwnerNodes},
	{"github.com/brokerlab/brokerlab/gossip", OwnerNodes},
	{"go.etcd.io/", OwnerNodes},
	{"github.com/nats-io/nats-server/", OwnerNodes},
	{"github.com/hashicorp/", OwnerNodes},
	{"google.golang.org/grpc", OwnerNodes}, // etcd's server side
	{"github.com/brokerlab/brokerlab/producer", OwnerClients},
	{"github.com/brokerlab/brokerlab/consumer", OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*pubRun)", OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*producer)", OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*consumer)", OwnerClients},
	{"github.com/segmentio/kafka-go", OwnerClients},
	{"github.com/twmb/franz-go/pkg/kgo", OwnerClients},
	{"github.com/nats-io/nats.go", OwnerClients},
	{"github.com/brokerlab/brokerlab/faultnet", OwnerLinks},
}

// HeapShare is the live heap one owner holds.
type HeapShare struct {
	Owner string `json:"owner"`
	Bytes int64  `json:"bytes"`
}

// heapByOwner splits the live heap as of the last collection (call
// runtime.GC first) by owner, from the runtime's sampled memory profile,
// scaled as pprof scales it. It returns the shares, largest first.
func heapByOwner() []HeapShare {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, false); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	by := map[string]float64{}
	for i := range recs {
		r := &recs[i]
		bytes, objs := r.InUseBytes(), r.InUseObjects()
		if bytes <= 0 || objs <= 0 {
			continue
		}
		// The profile samples one allocation per rate bytes on average:
		// an object of size s was sampled with probability 1-exp(-s/rate).
		scale := 1.0
		if rate > 1 {
			scale = 1 / (1 - math.Exp(-float64(bytes)/float64(objs)/rate))
		}
		by[stackOwner(r.Stack())] += float64(bytes) * scale
	}
	var out []HeapShare
	for _, o := range []string{OwnerNodes, OwnerClients, OwnerLinks, OwnerRunner} {
		out = append(out, HeapShare{Owner: o, Bytes: int64(by[o])})
	}
	slices.SortStableFunc(out, func(a, b HeapShare) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return out
}

// stackOwner is the owner of a stack (innermost frame first).
func stackOwner(pcs []uintptr) string {
	owner := OwnerRunner
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if o := functionOwner(f.Function); o != "" {
			owner = o // the outermost one wins
		}
		if !more {
			return owner
		}
	}
}

func functionOwner(fn string) string {
	for _, h := range heapOwners {
		if strings.HasPrefix(fn, h.prefix) {
			return h.owner
		}
	}
	return ""
}

// formatShares is "nodes 93.1, clients 58.0, ..." in MiB.
func formatShares(shares []HeapShare) string {
	var parts []string
	for _, s := range shares {
		parts = append(parts, fmt.Sprintf("%s %.1f", s.Owner, float64(s.Bytes)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}
