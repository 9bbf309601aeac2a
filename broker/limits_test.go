package broker_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/segmentio/kafka-go"
)

// TestMaxConnections: connections past the cap are closed at once; the
// ones within it keep working.
func TestMaxConnections(t *testing.T) {
	n := startStandalone(t, t.TempDir(), "127.0.0.1:0", func(c *broker.Config) { c.MaxConnections = 2 })
	var open []*kafka.Conn
	for range 2 {
		c, err := kafka.Dial("tcp", n.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ApiVersions(); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
		open = append(open, c)
	}
	extra, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection stayed open with max connections 2")
	}
	if _, err := open[0].ApiVersions(); err != nil {
		t.Fatalf("existing connection broke: %v", err)
	}
}

// TestAutoCreateTopics: off by default (unknown topics are unknown), on
// when configured (Metadata creates them).
func TestAutoCreateTopics(t *testing.T) {
	off := startStandalone(t, t.TempDir(), "127.0.0.1:0")
	c, err := kafka.Dial("tcp", off.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ReadPartitions("nope"); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("metadata for an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if len(off.b.View().Topics) != 0 {
		t.Fatalf("topics created with auto-creation off: %v", off.b.View().Topics)
	}
	on := startStandalone(t, t.TempDir(), "127.0.0.1:0", func(c *broker.Config) { c.AutoCreateTopics = true; c.DefaultPartitions = 3 })
	c2, err := kafka.Dial("tcp", on.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	testutil.Eventually(t, 10*time.Second, func() error {
		ps, err := c2.ReadPartitions("auto")
		if err != nil {
			return err
		}
		if len(ps) != 3 {
			return errors.New("partitions not all there yet")
		}
		return nil
	})
}
