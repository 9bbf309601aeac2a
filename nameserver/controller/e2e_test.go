package controller_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
	"github.com/brokerlab/brokerlab/nameserver/nstest"
)

// End-to-end tests of controller mode: two real name servers, standalone
// controllers (one or three), real brokers (brokertest) in 2 groups x
// (master + slave): brokers 1 (a) and 2 (a), 3 (b) and 4 (b); each group's
// first broker to start becomes its master. Every connection goes over
// loopback TCP through a faultnet.Network.

const (
	topic = "orders"
	wait  = 30 * time.Second
)

// ctrlID is the controller broker id of Kafka node id (see the registrar).
func ctrlID(node int32) int32 { _, id := nstest.GroupOf(node); return id + 1 }

type cluster struct {
	c     *brokertest.Cluster
	nw    *faultnet.Network
	ctrls []*controller.Controller
	rc    *nameserver.RouteClient
	kc    *kclient.Client
	tm    nameserver.Timings
}

type options struct {
	controllers int
	mode        string
	timings     func(*nameserver.Timings)
}

func newCluster(t testing.TB, o options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end cluster test")
	}
	log := testutil.Logger(t, slog.LevelWarn)
	cl := &cluster{nw: faultnet.New(log.With("component", "faultnet")), tm: nstest.Timings()}
	if o.timings != nil {
		o.timings(&cl.tm)
	}
	t.Cleanup(func() { _ = cl.nw.Close() })

	lns, peers, err := controller.ListenPeers(context.Background(), o.controllers)
	if err != nil {
		t.Fatal(err)
	}
	for i, addr := range peers {
		cl.nw.Register(ctrlName(i), addr)
	}
	for i := range lns {
		cfg := cl.tm.Controller.Config()
		cfg.ID, cfg.Peers, cfg.Listener = uint64(i+1), peers, lns[i]
		cfg.Dial = cl.nw.Dialer(ctrlName(i))
		cfg.Logger = log.With("node", ctrlName(i))
		c, err := controller.New(cfg)
		cl.ctrls = append(cl.ctrls, testutil.Started(t, c, err))
	}
	nss := nstest.Addrs(nstest.StartNameServers(t, cl.tm, 2, cl.nw, log))
	mode := o.mode
	if mode == "" {
		mode = nameserver.ModeSync
	}
	cl.c = brokertest.New(t, brokertest.Brokers(4), brokertest.WithNetwork(cl.nw),
		brokertest.WithControlPlane(func(id int32) broker.ControlPlane {
			cfg := nstest.RegistrarConfig(cl.tm, id, nss, cl.nw, log)
			cfg.Controllers, cfg.Mode = peers, mode
			r, err := nameserver.NewRegistrar(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}))
	cl.rc, cl.kc = nstest.StartClients(t, cl.tm, nss, cl.nw, log)

	nstest.CreateTopic(t, cl.c, cl.rc, topic)
	// Both slaves join their group's SyncStateSet.
	cl.wantSyncStateSet(t, "a", 1, 2)
	cl.wantSyncStateSet(t, "b", 1, 2)
	cl.wantLeader(t, cl.partitions(t, "a"), 1)
	cl.wantLeader(t, cl.partitions(t, "b"), 3)
	return cl
}

func ctrlName(i int) string { return fmt.Sprintf("controller-%d", i+1) }

// leaderCtrl waits for a controller leader among the open ones.
func (cl *cluster) leaderCtrl(t testing.TB, skip ...*controller.Controller) *controller.Controller {
	t.Helper()
	var l *controller.Controller
	testutil.Eventually(t, wait, func() error {
		for _, c := range cl.ctrls {
			if !slices.Contains(skip, c) && c.IsLeader() {
				l = c
				return nil
			}
		}
		return errors.New("no controller leader")
	})
	return l
}

// state returns the leading controller's state of a group.
func (cl *cluster) state(t testing.TB, group string, skip ...*controller.Controller) controller.GroupState {
	t.Helper()
	st, _ := cl.leaderCtrl(t, skip...).Group("c1", group)
	return st
}

// wantSyncStateSet waits until a group's SyncStateSet is ids (controller
// broker ids).
func (cl *cluster) wantSyncStateSet(t testing.TB, group string, ids ...int32) controller.GroupState {
	t.Helper()
	var st controller.GroupState
	testutil.Eventually(t, wait, func() error {
		st = cl.state(t, group)
		if !slices.Equal(st.SyncStateSet, ids) {
			return fmt.Errorf("group %s: sync state set %v, want %v", group, st.SyncStateSet, ids)
		}
		return nil
	})
	return st
}

func (cl *cluster) partitions(t testing.TB, group string) []int32 {
	return nstest.Partitions(t, cl.rc, topic, group)
}

// wantLeader waits until every running broker's view has leader for parts.
func (cl *cluster) wantLeader(t testing.TB, parts []int32, leader int32) {
	nstest.WantLeader(t, cl.c, topic, parts, leader)
}

// wantRouteMaster waits until the name servers route group's master to node.
func (cl *cluster) wantRouteMaster(t testing.TB, group string, node int32) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		r, err := cl.rc.Refresh(context.Background(), topic)
		if err != nil {
			return err
		}
		for _, g := range r.Groups {
			if m, ok := g.Master(); g.Group == group && ok && m.NodeID == node {
				return nil
			}
		}
		return fmt.Errorf("route %+v: master of %s is not %d", r.Groups, group, node)
	})
}

type ack = nstest.Ack

func (cl *cluster) startProducer(t testing.TB) *nstest.Producer {
	return nstest.StartProducer(t, nstest.ProducerConfig{Routes: cl.rc, Kafka: cl.kc, Topic: topic,
		Table: nameserver.DefaultLatencyTable().Scaled(1.0 / 600), Timeout: time.Second})
}

func (cl *cluster) readAll(ctx context.Context, addr string, partition int32) (map[int64]string, error) {
	return nstest.ReadAll(ctx, cl.kc, addr, topic, partition)
}

func (cl *cluster) missing(t testing.TB, addr string, acks []ack) []ack {
	return nstest.Missing(t, cl.kc, addr, topic, acks)
}

func (cl *cluster) lostIn(addr string, acks []ack) ([]ack, error) {
	return nstest.LostIn(cl.kc, addr, topic, acks)
}
