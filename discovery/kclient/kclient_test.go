package kclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// TestTimeoutBreaksConnection: a request whose context ends on a stalled
// link fails with the context's error (not ErrNotSent: it was written), the
// connection is dropped, and the next request dials again and succeeds.
func TestTimeoutBreaksConnection(t *testing.T) {
	log := testutil.Logger(t, slog.LevelDebug)
	b := brokertest.Standalone(t)
	nw := faultnet.New(log)
	t.Cleanup(func() { nw.Close() })
	nw.Register("broker", b.Addr())
	c := kclient.New(kclient.Config{ClientID: "test", Dial: nw.Dialer("client"), Logger: log})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CreateTopic(ctx, b.Addr(), "k", 1, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	md, err := c.Metadata(ctx, b.Addr(), []string{"k"})
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata %+v %v", md, err)
	}
	if p := md.Topics[0].Partitions[0]; p.Leader != 0 || p.LeaderEpoch < 0 || md.Brokers[0] != b.Addr() {
		t.Fatalf("partition metadata %+v, brokers %v: want leader 0 at %s with an epoch (Metadata v7+)", p, md.Brokers, b.Addr())
	}
	req := kclient.ProduceRequest{Topic: "k", Acks: -1, Timeout: time.Second, Records: []kclient.Record{{Value: []byte("v")}}}
	testutil.Eventually(t, 5*time.Second, func() error { _, err := c.Produce(ctx, b.Addr(), req); return err })

	nw.Pause("broker")
	short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Produce(short, b.Addr(), req)
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kclient.ErrNotSent) {
		t.Fatalf("produce on a paused link: %v, want a deadline error that is not ErrNotSent", err)
	}
	nw.Resume("broker")
	if _, err := c.Produce(ctx, b.Addr(), req); err != nil {
		t.Fatalf("produce after resume: %v", err)
	}
	// The timed-out request reaches the broker once the link resumes:
	// without idempotence it is written too (3 records in all).
	testutil.Eventually(t, 10*time.Second, func() error {
		end, err := c.ListOffsets(ctx, b.Addr(), "k", 0, kclient.Latest)
		if err == nil && end != 3 {
			err = fmt.Errorf("end offset %d, want 3", end)
		}
		return err
	})

	// acks=0: no response, no offset.
	req.Acks = 0
	if off, err := c.Produce(ctx, b.Addr(), req); err != nil || off != -1 {
		t.Fatalf("acks=0 produce: %d %v", off, err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		end, err := c.ListOffsets(ctx, b.Addr(), "k", 0, kclient.Latest)
		if err == nil && end != 4 {
			err = errors.New("acks=0 record not written yet")
		}
		return err
	})

	// A broker error comes back as a kafka.Error.
	_, err = c.Produce(ctx, b.Addr(), kclient.ProduceRequest{Topic: "nope", Acks: 1, Timeout: time.Second, Records: req.Records})
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("produce to a missing topic: %v", err)
	}
}
