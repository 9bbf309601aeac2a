package gossip

import (
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// spreadNode is one in-process memberlist member that spreads updates with
// a spreader; no data plane, no cluster state.
type spreadNode struct {
	ml   *memberlist.Memberlist
	sp   *spreader
	has  atomic.Bool
	recv *atomic.Int64
}

type spreadDelegate struct{ n *spreadNode }

func (d spreadDelegate) NodeMeta(int) []byte             { return nil }
func (d spreadDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d spreadDelegate) LocalState(bool) []byte          { return nil }
func (d spreadDelegate) MergeRemoteState([]byte, bool)   {}
func (d spreadDelegate) NotifyMsg(b []byte) {
	defer d.n.recv.Add(1)
	m, err := decode(b)
	if err != nil || m.update == nil {
		return
	}
	fwd := *m.update
	msg, _ := encode(kindUpdate, update{Origin: fwd.Origin, Seq: fwd.Seq, Via: d.n.id(), Delta: fwd.Delta})
	d.n.sp.add(updateID{fwd.Origin, fwd.Seq}, msg, nodeName(fwd.Via), time.Now())
	d.n.has.Store(true)
}

func (n *spreadNode) id() int32 {
	id, _ := nodeID(n.ml.LocalNode().Name)
	return id
}

// spreadResult is what one update cost to reach every member.
type spreadResult struct {
	rounds, messages, messagesAll int
}

// simulateSpread starts n members on memberlist's in-memory network, lets
// one of them publish an update and drives gossip rounds (every member's
// round, then every message delivered) until every member holds it and
// nobody spreads it any more.
func simulateSpread(tb testing.TB, n int, tellOnce bool) spreadResult {
	netw := &memberlist.MockNetwork{}
	var recv atomic.Int64
	nodes := make([]*spreadNode, n)
	// MockNetwork's maps are not safe to grow while members gossip: make
	// every transport first.
	transports := make([]*memberlist.MockTransport, n)
	for i := range transports {
		transports[i] = netw.NewTransport(nodeName(int32(i + 1)))
	}
	for i := range nodes {
		c := memberlist.DefaultLANConfig()
		c.Name = nodeName(int32(i + 1))
		c.Transport = transports[i]
		c.LogOutput = io.Discard
		c.ProbeInterval = time.Hour // membership only; no probing noise
		c.GossipInterval = 20 * time.Millisecond
		c.PushPullInterval = 5 * time.Second // heals a missed alive message
		sn := &spreadNode{sp: newSpreader(3, 4, tellOnce, uint64(i)+1), recv: &recv}
		c.Delegate = spreadDelegate{sn}
		ml, err := memberlist.Create(c)
		if err != nil {
			tb.Fatal(err)
		}
		sn.ml = ml
		nodes[i] = sn
		if i > 0 {
			var err error
			for range 5 { // a join can time out while hundreds of members gossip
				if _, err = ml.Join([]string{nodes[(i-1)/2].ml.LocalNode().Address()}); err == nil {
					break
				}
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	defer func() {
		for _, sn := range nodes {
			_ = sn.ml.Shutdown()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for _, sn := range nodes {
		for sn.ml.NumMembers() < n {
			if time.Now().After(deadline) {
				tb.Fatalf("membership did not converge: %d of %d", sn.ml.NumMembers(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	members := make([][]*memberlist.Node, n)
	for i, sn := range nodes {
		for _, m := range sn.ml.Members() {
			if m.Name != sn.ml.LocalNode().Name {
				members[i] = append(members[i], m)
			}
		}
	}
	origin := nodes[0]
	msg, _ := encode(kindUpdate, update{Origin: 1, Seq: 1, Via: 1, Delta: &delta{Epoch: 7}})
	origin.sp.add(updateID{1, 1}, msg, "", time.Now())
	origin.has.Store(true)
	var res spreadResult
	sent := int64(0)
	for round := 1; round < 200; round++ {
		for i, sn := range nodes {
			for _, o := range sn.sp.round(members[i], time.Now()) {
				if err := sn.ml.SendBestEffort(o.to, o.msg); err != nil {
					tb.Fatal(err)
				}
				sent++
			}
		}
		for recv.Load() < sent {
			time.Sleep(time.Millisecond)
		}
		all := true
		for _, sn := range nodes {
			all = all && sn.has.Load()
		}
		if all && res.rounds == 0 {
			res.rounds, res.messagesAll = round, int(sent)
		}
		busy := 0
		for _, sn := range nodes {
			busy += sn.sp.pending()
		}
		if busy == 0 {
			break
		}
	}
	res.messages = int(sent)
	return res
}

// BenchmarkSpread measures one update's spreading among 10, 100 and 1000
// in-process memberlist members, with random targets each round
// (memberlist's broadcasts) and with TellOnce. Reported per update:
// rounds until every member holds it, messages sent by then, and messages
// sent until every member stopped spreading it.
//
//	go test ./gossip -run XXX -bench Spread -benchtime 3x
func BenchmarkSpread(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, tellOnce := range []bool{false, true} {
			b.Run("members="+strconv.Itoa(n)+"/tell-once="+strconv.FormatBool(tellOnce), func(b *testing.B) {
				if testing.Short() && n > 100 {
					b.Skip("1000 members in -short")
				}
				var rounds, all, total int
				for range b.N {
					r := simulateSpread(b, n, tellOnce)
					rounds += r.rounds
					all += r.messagesAll
					total += r.messages
				}
				b.ReportMetric(float64(rounds)/float64(b.N), "rounds")
				b.ReportMetric(float64(all)/float64(b.N), "msgs-to-all")
				b.ReportMetric(float64(total)/float64(b.N), "msgs-total")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// TestSpreadReachesEveryone: both modes reach every member of a small
// cluster, and TellOnce never sends more.
func TestSpreadReachesEveryone(t *testing.T) {
	plain := simulateSpread(t, 20, false)
	once := simulateSpread(t, 20, true)
	if plain.rounds == 0 || once.rounds == 0 {
		t.Fatalf("an update did not reach every member: %+v %+v", plain, once)
	}
	if once.messages > plain.messages {
		t.Fatalf("tell-once sent %d messages, random targets %d", once.messages, plain.messages)
	}
	t.Logf("random: %+v; tell-once: %+v", plain, once)
}
