package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// sessionLoop keeps the broker's session: it refreshes the lease, campaigns
// for controller under it and, when the session ends (etcd unreachable for a
// TTL, or the lease gone), re-establishes it: the same lease when etcd still
// has it (an etcd outage does not expire leases, as a ZooKeeper outage does
// not expire sessions), otherwise a new lease and a new registration. It
// returns when ctx ends, leaving the lease to expire.
func (p *Plane) sessionLoop(ctx context.Context, lease clientv3.LeaseID) {
	ttl := int(p.cfg.SessionTTL / time.Second)
	for ctx.Err() == nil {
		s, err := concurrency.NewSession(p.client, concurrency.WithLease(lease), concurrency.WithTTL(ttl),
			concurrency.WithContext(ctx))
		if err != nil { // only when the client is closed
			p.log.Error("cannot keep the session alive", "error", err)
			return
		}
		p.campaign(ctx, s)
		if ctx.Err() != nil {
			s.Orphan()
			return
		}
		p.log.Warn("session lost, re-establishing it", "node-id", p.self.ID, "lease", fmt.Sprintf("%x", int64(lease)))
		if lease = p.recoverSession(ctx, lease); lease == 0 {
			return
		}
	}
}

// recoverSession returns a lease that is alive with the registration under
// it, retrying until ctx ends (then 0).
func (p *Plane) recoverSession(ctx context.Context, lease clientv3.LeaseID) clientv3.LeaseID {
	bo := newBackoff(p.cfg.ReconnectBackoffMax)
	for {
		rctx, cancel := p.requestCtx(ctx)
		ttl, err := p.client.TimeToLive(rctx, lease)
		switch {
		case err == nil && ttl.TTL > 0:
			err = p.putRegistration(rctx, lease)
			if err == nil {
				cancel()
				p.log.Info("session resumed", "node-id", p.self.ID, "lease", fmt.Sprintf("%x", int64(lease)))
				return lease
			}
		case err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound):
			var next clientv3.LeaseID
			if next, err = p.grantAndRegister(rctx); err == nil {
				cancel()
				p.setLease(next)
				p.log.Info("session expired, registered again", "node-id", p.self.ID,
					"lease", fmt.Sprintf("%x", int64(next)))
				return next
			}
		}
		cancel()
		p.log.Debug("session not re-established yet", "error", err)
		if !bo.wait(ctx) {
			return 0
		}
	}
}

// campaign runs for controller with session s and, once elected, acts as
// controller until the session ends or ctx ends. A deposed controller
// campaigns again.
//
// The election is concurrency.Election's: a key per candidate under the
// candidate's lease, the lowest create revision leads. It is done here rather
// than with Election.Campaign because Campaign resigns with an unbounded
// context when cancelled, which would hang a crash (Close) while etcd is
// unreachable; and waiting is done on the handle's own watch, which costs
// nothing more.
func (p *Plane) campaign(ctx context.Context, s *concurrency.Session) {
	cctx, cancel := context.WithCancel(s.Ctx()) // s.Ctx ends with the session (and with ctx)
	defer cancel()
	bo := newBackoff(p.cfg.ReconnectBackoffMax)
	for cctx.Err() == nil {
		key, rev, err := p.campaignOnce(cctx, s.Lease())
		if err != nil {
			if cctx.Err() == nil {
				p.log.Debug("campaign failed", "error", err)
				bo.wait(cctx)
			}
			continue
		}
		bo.reset()
		p.log.Info("elected controller", "node-id", p.self.ID, "election-rev", rev)
		p.setController(true)
		err = p.runController(cctx, key, rev)
		p.setController(false)
		p.log.Info("stopped acting as controller", "node-id", p.self.ID, "reason", err)
		if cctx.Err() == nil {
			bo.wait(cctx) // deposed while the session lives: campaign again
		}
	}
	<-s.Done()
}

// campaignOnce puts this broker's candidate key (unless it is there from an
// earlier campaign of the same session) and waits until it leads. It returns
// the key and its create revision, the fencing token of every controller
// write.
func (p *Plane) campaignOnce(ctx context.Context, lease clientv3.LeaseID) (string, int64, error) {
	name := fmt.Sprintf("%x", int64(lease))
	key := p.keys.election() + "/" + name
	resp, err := p.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encodeBrokerID(p.self.ID), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return "", 0, fmt.Errorf("coordinator: campaign: %w", err)
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		rev = resp.Responses[0].GetResponseRange().GetKvs()[0].CreateRevision
	}
	for {
		changed := p.cache.changed()
		switch lead, gone := p.cache.candidateStatus(name, rev); {
		case gone:
			return "", 0, errors.New("coordinator: campaign: candidate key deleted")
		case lead:
			return key, rev, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
	}
}
