package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/swarm"
)

// labelFormedBy marks a swarm a run formed itself ("<host>/<pid>"): the
// last run of this process leaves it, and a later run adopts it (and so
// leaves it) when that process died before it could.
const labelFormedBy = "org.brokerlab.swarm.formed-by"

// AdvertiseEnv names the address a swarm the runner forms advertises
// (default 127.0.0.1: a one-node swarm on this machine).
const AdvertiseEnv = "BROKERLAB_SWARM_ADVERTISE"

// membership counts this process's deployments on the local engine's swarm.
var membership struct {
	sync.Mutex
	users  int
	formed bool // this process formed (or adopted) the swarm: leave it after the last user
}

func (e *engine) inspectSwarm(ctx context.Context) (swarm.Swarm, error) {
	var s swarm.Swarm
	err := e.call(ctx, http.MethodGet, "/swarm", nil, nil, &s)
	return s, err
}

// acquireSwarm makes sure the local engine is a manager of an active
// swarm, forming a one-node swarm when it is in none. It returns the local
// swarm node's id and a release function the deployment calls when it is
// closed; the last release leaves a swarm this process formed, unless
// services other than the runs' own are left on it.
func acquireSwarm(ctx context.Context, eng *engine, logger *slog.Logger) (string, func(), error) {
	membership.Lock()
	defer membership.Unlock()
	inf, err := eng.info(ctx)
	if err != nil {
		return "", nil, err
	}
	switch inf.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !inf.Swarm.ControlAvailable {
			return "", nil, errors.New("swarm: this engine is a swarm worker; run the runner against a manager (DOCKER_HOST)")
		}
		if s, err := eng.inspectSwarm(ctx); err == nil && deadOwner(s.Spec.Labels[labelFormedBy]) && !membership.formed {
			logger.Info("adopting a swarm a dead run formed", "formed-by", s.Spec.Labels[labelFormedBy])
			membership.formed = true
		}
	case swarm.LocalNodeStateInactive:
		addr := os.Getenv(AdvertiseEnv)
		if addr == "" {
			addr = "127.0.0.1"
		}
		if err := eng.initSwarm(ctx, addr, map[string]string{labelFormedBy: owner()}); err != nil {
			return "", nil, fmt.Errorf("swarm: form a one-node swarm: %w", err)
		}
		logger.Info("formed a one-node swarm", "advertise", addr)
		membership.formed = true
		if inf, err = eng.info(ctx); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, fmt.Errorf("swarm: the engine's swarm state is %q", inf.Swarm.LocalNodeState)
	}
	membership.users++
	var once sync.Once
	release := func() {
		once.Do(func() {
			membership.Lock()
			defer membership.Unlock()
			membership.users--
			if membership.users > 0 || !membership.formed {
				return
			}
			ctx := context.Background()
			if svcs, err := eng.services(ctx); err != nil || len(svcs) > 0 {
				logger.Info("not leaving the swarm: services are left on it", "services", len(svcs), "error", err)
				return
			}
			if err := eng.leaveSwarm(ctx); err != nil {
				logger.Warn("leaving the swarm", "error", err)
				return
			}
			membership.formed = false
			logger.Info("left the swarm this run formed")
		})
	}
	return inf.Swarm.NodeID, release, nil
}

func owner() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// deadOwner reports whether owner ("<host>/<pid>") is a process of this
// host that no longer runs.
func deadOwner(owner string) bool {
	host, _ := os.Hostname()
	h, pid, ok := strings.Cut(owner, "/")
	if !ok || h != host {
		return false
	}
	p, err := strconv.Atoi(pid)
	return err == nil && !processAlive(p)
}
