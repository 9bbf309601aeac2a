package gossip

import (
	"context"
	"testing"
	"time"
)

// TestResolveAdvertise: an address is used as it is, a host name is
// resolved (a swarm task knows only its name), and a name that never
// resolves is an error once the context ends, not a hang.
func TestResolveAdvertise(t *testing.T) {
	ctx := context.Background()
	if ip, err := resolveAdvertise(ctx, "10.1.2.3"); err != nil || ip != "10.1.2.3" {
		t.Errorf("an address: %q, %v", ip, err)
	}
	if ip, err := resolveAdvertise(ctx, "localhost"); err != nil || ip != "127.0.0.1" {
		t.Errorf("localhost: %q, %v", ip, err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if ip, err := resolveAdvertise(short, "no-such-host.invalid"); err == nil {
		t.Errorf("an unresolvable name gave %q", ip)
	}
}
