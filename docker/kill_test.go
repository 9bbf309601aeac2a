package docker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// fakeEngine answers the two engine calls kill makes: the kill itself, and
// container inspection reporting running until stopAfter inspections (never
// when negative). It is an in-memory stand-in for one piece under test (the
// kill's state tracking); the engine-backed tests cover the real thing.
func fakeEngine(t *testing.T, stopAfter int) *dc.Client {
	t.Helper()
	var inspections atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/kill"):
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/json"):
			n := int(inspections.Add(1))
			running := stopAfter < 0 || n <= stopAfter
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Id":"c1","State":{"Running":` + map[bool]string{true: "true", false: "false"}[running] + `}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	client, err := dc.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func killTestCluster(client *dc.Client, st nodeState) (*Cluster, *Node) {
	n := &Node{Name: "broker 0", Role: RoleBroker, state: st}
	l := &containers{pool: &dockertest.Pool{Client: client}, ctrs: map[*Node]*ctr{n: {id: "c1"}}}
	c := NewCluster(l, "docker", slog.New(slog.DiscardHandler))
	c.nodes[n.Name], c.order = n, []string{n.Name}
	return c, n
}

// TestKillContextEndsMidPoll: a kill whose context ends before the engine
// reports the container stopped must not mark the node killed (a later
// restart would start a container that may still run); a paused node it
// thawed is up again.
func TestKillContextEndsMidPoll(t *testing.T) {
	for _, st := range []nodeState{stateUp, statePaused} {
		c, n := killTestCluster(fakeEngine(t, -1), st)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		err := c.kill(ctx, n.Name)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("kill: %v, want the context's error", err)
		}
		if n.state != stateUp {
			t.Errorf("from state %d: state %d after an unconfirmed kill, want up", st, n.state)
		}
	}
}

// TestKillConfirmed: the node is killed once the engine reports it stopped.
func TestKillConfirmed(t *testing.T) {
	c, n := killTestCluster(fakeEngine(t, 2), stateUp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.kill(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	if n.state != stateKilled {
		t.Fatalf("state %d, want killed", n.state)
	}
	if err := c.kill(ctx, n.Name); err == nil {
		t.Fatal("a second kill of a killed node must fail")
	}
}
