package standalone

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/brokerlab/brokerlab/broker"
)

// views records what the plane delivers.
type views struct {
	mu   sync.Mutex
	last broker.ClusterView
	n    int
}

func (v *views) on(cv broker.ClusterView) {
	v.mu.Lock()
	v.last, v.n = cv, v.n+1
	v.mu.Unlock()
}

func (v *views) get() (broker.ClusterView, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last, v.n
}

func open(t *testing.T, dir string) (*Plane, *views) {
	t.Helper()
	p, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := &views{}
	if err := p.Register(context.Background(), broker.BrokerInfo{ID: 1, Addr: "127.0.0.1:1"}, v.on); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, v
}

func topicNames(v broker.ClusterView) []string {
	var out []string
	for _, t := range v.Topics {
		out = append(out, t.Config.Name)
	}
	return out
}

func topic(name string) broker.TopicConfig {
	return broker.TopicConfig{Name: name, Partitions: 1, ReplicationFactor: 1}
}

// blockSaves makes every save of the state fail (its temporary file's path
// is taken by a directory) until the returned function is called.
func blockSaves(t *testing.T, dir string) func() {
	t.Helper()
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(tmp); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeleteTopicsSaveFailure: a deletion that cannot be saved reports the
// error for every topic it would have deleted (not only the first), deletes
// nothing, and publishes nothing.
func TestDeleteTopicsSaveFailure(t *testing.T) {
	dir := t.TempDir()
	p, v := open(t, dir)
	ctx := context.Background()
	for i, err := range p.CreateTopics(ctx, []broker.TopicConfig{topic("a"), topic("b"), topic("c")}) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, before := v.get()
	unblock := blockSaves(t, dir)
	errs := p.DeleteTopics(ctx, []string{"a", "missing", "b"})
	if len(errs) != 3 {
		t.Fatalf("%d errors for 3 topics", len(errs))
	}
	for _, i := range []int{0, 2} {
		if errs[i] == nil || errors.Is(errs[i], broker.ErrUnknownTopic) {
			t.Errorf("topic %d: %v, want the save error", i, errs[i])
		}
	}
	if !errors.Is(errs[1], broker.ErrUnknownTopic) {
		t.Errorf("missing topic: %v, want ErrUnknownTopic", errs[1])
	}
	if last, n := v.get(); n != before || !slices.Equal(topicNames(last), []string{"a", "b", "c"}) || len(last.DeletedTopics) != 0 {
		t.Fatalf("after a failed delete: %d new views, topics %v, deleted %v", n-before, topicNames(last), last.DeletedTopics)
	}
	unblock()

	// Saving works again: the deletion goes through and is announced, and
	// the state on disk has it.
	if errs := p.DeleteTopics(ctx, []string{"a", "b"}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("delete: %v", errs)
	}
	if last, _ := v.get(); !slices.Equal(topicNames(last), []string{"c"}) || !slices.Equal(last.DeletedTopics, []string{"a", "b"}) {
		t.Fatalf("after the delete: topics %v, deleted %v", topicNames(last), last.DeletedTopics)
	}
	_ = p.Close()
	_, v2 := open(t, dir)
	if last, _ := v2.get(); !slices.Equal(topicNames(last), []string{"c"}) || !slices.Equal(last.DeletedTopics, []string{"a", "b"}) {
		t.Fatalf("after a restart: topics %v, deleted %v", topicNames(last), last.DeletedTopics)
	}
}

// TestCreateTopicsSaveFailure: a creation that cannot be saved fails for
// every topic it would have created and leaves no trace, in views or on
// disk; creating a deleted topic again ends its announcement.
func TestCreateTopicsSaveFailure(t *testing.T) {
	dir := t.TempDir()
	p, v := open(t, dir)
	ctx := context.Background()
	if errs := p.CreateTopics(ctx, []broker.TopicConfig{topic("a")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if errs := p.DeleteTopics(ctx, []string{"a"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	unblock := blockSaves(t, dir)
	errs := p.CreateTopics(ctx, []broker.TopicConfig{topic("a"), topic("b"), {Name: "c", Partitions: 1, ReplicationFactor: 3}})
	if errs[0] == nil || errs[1] == nil || !errors.Is(errs[2], broker.ErrNotEnoughBrokers) {
		t.Fatalf("errs %v: want the save error twice, then ErrNotEnoughBrokers", errs)
	}
	if last, _ := v.get(); len(last.Topics) != 0 || !slices.Equal(last.DeletedTopics, []string{"a"}) {
		t.Fatalf("after a failed create: topics %v, deleted %v", topicNames(last), last.DeletedTopics)
	}
	unblock()
	_ = p.Close()
	p, v = open(t, dir)
	if last, _ := v.get(); len(last.Topics) != 0 || !slices.Equal(last.DeletedTopics, []string{"a"}) {
		t.Fatalf("after a restart: topics %v, deleted %v", topicNames(last), last.DeletedTopics)
	}
	if errs := p.CreateTopics(ctx, []broker.TopicConfig{topic("a")}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if last, _ := v.get(); !slices.Equal(topicNames(last), []string{"a"}) || len(last.DeletedTopics) != 0 {
		t.Fatalf("created again: topics %v, deleted %v", topicNames(last), last.DeletedTopics)
	}
}
