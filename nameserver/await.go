package nameserver

import (
	"context"
	"fmt"
	"time"
)

// AwaitBrokers polls until every name server behind probes (one route
// client per name server) lists at least count brokers, or ctx ends. A
// runner starting a cluster waits with it before creating topics: the
// answering name server spreads a topic over the groups it knows.
func AwaitBrokers(ctx context.Context, probes []*RouteClient, count int) error {
	for {
		var missing error
		for i, p := range probes {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			info, err := p.ClusterInfo(cctx)
			cancel()
			n := 0
			for _, g := range info.Groups {
				n += len(g.Members)
			}
			if err != nil || n < count {
				missing = fmt.Errorf("name server %d knows %d of %d brokers (err %v)", i, n, count, err)
				break
			}
		}
		if missing == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", missing, ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling the name servers
		}
	}
}

// LiveBrokers returns the node ids registered with some name server behind
// probes (one route client per name server) that up says is running: a
// broker drops out once every live name server has dropped it, when no
// client can get a route to it any more. Nil when no name server answered.
func LiveBrokers(ctx context.Context, probes []*RouteClient, up func(i int) bool) []int32 {
	seen := map[int32]bool{}
	asked := 0
	for i, p := range probes {
		if !up(i) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := p.ClusterInfo(cctx)
		cancel()
		if err != nil {
			continue
		}
		asked++
		for _, g := range info.Groups {
			for _, m := range g.Members {
				seen[m.NodeID] = true
			}
		}
	}
	if asked == 0 {
		return nil
	}
	out := make([]int32, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	return out
}
