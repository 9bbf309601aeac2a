package scenarios

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

// heapOwners maps a function name prefix to its owner. A stack belongs to
// the owner of its outermost frame that has one (the goroutine's role:
// a client's write into a link buffer is the client's), else to the runner.
var heapOwners = []struct{ prefix, owner string }{
	{"github.com/brokerlab/brokerlab/broker", analysis.OwnerNodes},
	{"github.com/brokerlab/brokerlab/coordinator", analysis.OwnerNodes},
	{"github.com/brokerlab/brokerlab/nameserver", analysis.OwnerNodes},
	{"github.com/brokerlab/brokerlab/gossip", analysis.OwnerNodes},
	{"go.etcd.io/", analysis.OwnerNodes},
	{"github.com/nats-io/nats-server/", analysis.OwnerNodes},
	{"github.com/hashicorp/", analysis.OwnerNodes},
	{"google.golang.org/grpc", analysis.OwnerNodes}, // etcd's server side
	{"github.com/brokerlab/brokerlab/producer", analysis.OwnerClients},
	{"github.com/brokerlab/brokerlab/consumer", analysis.OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*pubRun)", analysis.OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*producer)", analysis.OwnerClients},
	{"github.com/brokerlab/brokerlab/scenarios/jetstream.(*consumer)", analysis.OwnerClients},
	{"github.com/segmentio/kafka-go", analysis.OwnerClients},
	{"github.com/twmb/franz-go/pkg/kgo", analysis.OwnerClients},
	{"github.com/nats-io/nats.go", analysis.OwnerClients},
	{"github.com/brokerlab/brokerlab/faultnet", analysis.OwnerLinks},
}

// heapByOwner splits the live heap as of the last collection (call
// runtime.GC first) by owner, from the runtime's sampled memory profile,
// scaled as pprof scales it. It returns the shares, largest first.
func heapByOwner() []analysis.HeapShare {
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
	var out []analysis.HeapShare
	for _, o := range analysis.HeapOwners {
		out = append(out, analysis.HeapShare{Owner: o, Bytes: int64(by[o])})
	}
	slices.SortStableFunc(out, func(a, b analysis.HeapShare) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return out
}

// stackOwner is the owner of a stack (innermost frame first).
func stackOwner(pcs []uintptr) string {
	owner := analysis.OwnerRunner
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
