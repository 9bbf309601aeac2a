package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// The nameserver-controller topology (RocketMQ 5 controller mode): the
// nameserver deployment plus `controllers` standalone `brokerlab
// controller` nodes, one Raft group, each keeping its log in its node's
// /data so that a restarted one rejoins with its state. Brokers heartbeat to the controller leader, which elects a new
// master from the SyncStateSet. Fault targets "controller N" act on one
// controller; the bare "controller" is the Raft leader at fault time.

// controllerPort is every controller's port, for peers and brokers alike
// (RocketMQ's controller port).
const controllerPort = 9878

// startControllers runs count controllers as one Raft group and waits
// until it has a leader.
func (d *nameServerDeployment) startControllers(ctx context.Context, count int) error {
	var err error
	if d.ctrls, err = d.addMembers(RoleController, count, controllerPort); err != nil {
		return err
	}
	peers := strings.Join(peerAddrs(d.ctrls), ",")
	t := d.nsTime.Controller
	err = d.LaunchAll(ctx, d.ctrls, func(i int, _ *Node) []string {
		return []string{"controller",
			"--id", strconv.Itoa(i + 1),
			"--peers", peers,
			"--listen", "0.0.0.0:" + strconv.Itoa(controllerPort),
			"--heartbeat-timeout", t.HeartbeatTimeout.String(),
			"--scan-interval", t.Scan.String(),
			"--tick", t.Tick.String(),
			"--election-ticks", strconv.Itoa(t.ElectionTicks),
			"--request-timeout", t.RequestTimeout.String(),
			"--data-dir", "/data/controller",
			"--log-level", "warn",
		}
	})
	if err != nil {
		return err
	}
	_, err = d.controllerLeader(ctx)
	return err
}

// controllerArgs are a broker's controller-mode flags (none in classic
// mode).
func (d *nameServerDeployment) controllerArgs() []string {
	if len(d.ctrls) == 0 {
		return nil
	}
	return []string{
		"--control-plane", nameserver.ControllerTopologyName,
		"--controllers", strings.Join(peerAddrs(d.ctrls), ","),
		"--controller-heartbeat", d.nsTime.Controller.BrokerHeartbeat.String(),
	}
}

// Active resolves controller mode's bare "controller": the Raft leader.
func (d *nameServerDeployment) Active(ctx context.Context, role string) (string, error) {
	if role != "controller" || len(d.ctrls) == 0 {
		return d.base.Active(ctx, role)
	}
	return d.controllerLeader(ctx)
}

// controllerLeader asks the reachable controllers who leads until one
// names itself (an election may be under way), for at most 15 s.
func (d *nameServerDeployment) controllerLeader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var leader string
	err := poll(ctx, 50*time.Millisecond, func() error {
		for i, n := range d.ctrls {
			if !d.reachable(n.Name) {
				continue
			}
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			id, _, err := controller.LeaderOf(qctx, n.addr(), nil)
			cancel()
			if err == nil && id == uint64(i+1) {
				leader = n.Name
				return nil
			}
		}
		return errors.New("no controller names itself leader")
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", d.rt, err)
	}
	return leader, nil
}

// controllerGroup reads a group's state from the controller leader.
func (d *nameServerDeployment) controllerGroup(ctx context.Context, group string) (controller.GroupState, error) {
	leader, err := d.controllerLeader(ctx)
	if err != nil {
		return controller.GroupState{}, err
	}
	n, err := d.node(leader)
	if err != nil {
		return controller.GroupState{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return controller.GroupOf(qctx, n.addr(), nil, clusterName, group)
}
