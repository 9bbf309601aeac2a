package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	dc "github.com/ory/dockertest/v3/docker"
)

// Power loss, graceful stop, packet loss and the ISR check of a roll under
// docker (the nodes.PowerLosser, nodes.Stopper and nodes.Losser runtimes,
// scenarios.Replication).
//
// Power loss: a container cannot lose its page cache, so the runtime does
// what the cache would have lost. Brokers run with --record-synced: every
// partition directory holds storage.SyncedFile, the bytes of each segment
// the last fsync covered, replaced whenever that changes. The runtime
// SIGKILLs the broker, copies its data directory out of the stopped
// container (the engine's archive API, which works on stopped containers
// and remote engines alike), cuts every .log to its recorded length and
// copies the cut files back. Recovery at the restart does the rest, as on a
// machine that lost power. Only the data directory is touched.

// brokerData is every broker's data directory in its container.
const brokerData = "/data/broker"

// stopTimeout is how long a SIGTERMed broker may take to hand off and
// close before the engine SIGKILLs it (the broker bounds its hand-off at
// 10 s).
const stopTimeout = 30

// PowerLoss kills a broker and cuts its files to their synced lengths; it
// stays down until Restart. It needs a PowerCutter launcher.
func (b *base) PowerLoss(ctx context.Context, node string) error {
	if _, ok := nodes.BrokerID(node); !ok {
		return nodes.NotApplicable("power-loss of %s: only brokers record their synced lengths", node)
	}
	pc, ok := b.l.(PowerCutter)
	if !ok {
		return nodes.NotApplicable("power-loss under %s", b.rt)
	}
	n, err := b.node(node)
	if err != nil {
		return err
	}
	if err := b.kill(ctx, node); err != nil {
		return err
	}
	cut, err := pc.CutToSynced(ctx, n)
	if err != nil {
		return fmt.Errorf("%s: power loss of %s: %w", b.rt, node, err)
	}
	b.logger.Info("power loss", "node", node, "bytes-lost", cut)
	return nil
}

// CutToSynced cuts the stopped container's segment files to the lengths
// their directories record and returns how many bytes it removed.
func (c *containers) CutToSynced(ctx context.Context, n *Node) (int64, error) {
	id := c.ctr(n).id
	var out bytes.Buffer
	if err := c.pool.Client.DownloadFromContainer(id, dc.DownloadFromContainerOptions{
		OutputStream: &out, Path: brokerData, Context: ctx,
	}); err != nil {
		return 0, fmt.Errorf("copy out %s: %w", brokerData, err)
	}
	files, records, err := readTar(&out)
	if err != nil {
		return 0, err
	}
	var lost int64
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for name, f := range files {
		rec, ok := records[path.Dir(name)]
		if !ok {
			continue // no record: nothing was ever written there
		}
		keep := rec.CutLength(path.Base(name), int64(len(f.data)))
		if keep == int64(len(f.data)) {
			continue
		}
		lost += int64(len(f.data)) - keep
		f.hdr.Size = keep
		if err := tw.WriteHeader(f.hdr); err != nil {
			return 0, err
		}
		if _, err := tw.Write(f.data[:keep]); err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if lost == 0 {
		return 0, nil
	}
	// The archive's paths start with the directory's own name ("broker/"),
	// so it goes back into its parent.
	if err := c.pool.Client.UploadToContainer(id, dc.UploadToContainerOptions{
		InputStream: &in, Path: path.Dir(brokerData), Context: ctx,
	}); err != nil {
		return 0, fmt.Errorf("copy back the cut files: %w", err)
	}
	return lost, nil
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// readTar reads the regular files of an archive, and parses the synced
// records among them by directory.
func readTar(r io.Reader) (map[string]tarFile, map[string]storage.SyncedLengths, error) {
	files := map[string]tarFile{}
	records := map[string]storage.SyncedLengths{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, records, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the data archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", hdr.Name, err)
		}
		name := path.Clean(hdr.Name)
		if path.Base(name) == storage.SyncedFile {
			rec, err := storage.ParseSyncedLengths(data)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			records[path.Dir(name)] = rec
			continue
		}
		files[name] = tarFile{hdr: hdr, data: data}
	}
}

// Stop sends SIGTERM to a broker: it hands its leaderships off (Close's
// controlled shutdown), flushes and exits. Restart brings it back. It
// needs a GracefulStopper launcher.
func (b *base) Stop(ctx context.Context, node string) error {
	if _, ok := nodes.BrokerID(node); !ok {
		return nodes.NotApplicable("stop of %s: only brokers hand off", node)
	}
	gs, ok := b.l.(GracefulStopper)
	if !ok {
		return nodes.NotApplicable("stop under %s", b.rt)
	}
	n, err := b.node(node)
	if err != nil {
		return err
	}
	b.mu.Lock()
	st := n.state
	b.mu.Unlock()
	if st != stateUp {
		return fmt.Errorf("%s: %s is not running", b.rt, node)
	}
	start := time.Now()
	if err := gs.Stop(ctx, n); err != nil {
		return fmt.Errorf("%s: stop %s: %w", b.rt, node, err)
	}
	b.mu.Lock()
	n.state = stateKilled // restart starts it again
	b.mu.Unlock()
	b.logger.Info("stopped", "node", node, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Stop sends SIGTERM (docker stop); the engine SIGKILLs the container
// after stopTimeout.
func (c *containers) Stop(ctx context.Context, n *Node) error {
	id := c.ctr(n).id
	if err := c.pool.Client.StopContainerWithContext(id, stopTimeout, ctx); err != nil {
		return err
	}
	return c.awaitStopped(ctx, id)
}

// Loss is not available: netem needs a qdisc per destination in the
// node's namespace, which no launcher sets up (see Delay).
func (b *base) Loss(context.Context, string, string, float64) error {
	return nodes.NotApplicable("loss under %s (no per-destination netem qdisc here; use the in-process runtime)", b.rt)
}

// UnderReplicated counts the partitions of the scenario's topic whose
// newest Metadata lacks a leader or has an ISR smaller than its replica
// set, or a replica on a broker that is down (scenarios.Replication).
func (b *base) UnderReplicated(ctx context.Context) (int, error) {
	t := b.spec.Topic
	n := 0
	for p := range int32(t.Partitions) {
		pm, ok := b.partition(ctx, t.Name, p)
		if !ok || pm.Leader < 0 || len(pm.Replicas) == 0 {
			n++
			continue
		}
		for _, r := range pm.Replicas {
			if !slices.Contains(pm.ISR, r) || !b.reachable(nodes.BrokerName(r)) {
				n++
				break
			}
		}
	}
	return n, nil
}

var (
	_ PowerCutter           = (*containers)(nil)
	_ GracefulStopper       = (*containers)(nil)
	_ Disconnector          = (*containers)(nil)
	_ nodes.PowerLosser     = (*base)(nil)
	_ nodes.Stopper         = (*base)(nil)
	_ nodes.Losser          = (*base)(nil)
	_ scenarios.Replication = (*base)(nil)
)
