package faultnet

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestGRPCThroughCutAndHeal runs a real gRPC client (as etcd's client is)
// over GRPCDialer: a cut makes calls time out, a heal brings them back on the
// same client.
func TestGRPCThroughCutAndHeal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)

	n := newNet(t)
	n.Register("etcd-0", ln.Addr().String())
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(n.GRPCDialer("broker-1")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := healthpb.NewHealthClient(cc)
	check := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(5 * time.Second); err != nil {
		t.Fatalf("check before the cut: %v", err)
	}
	n.Cut("broker-1", "etcd-0")
	if err := check(200 * time.Millisecond); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("check during the cut: %v, want DeadlineExceeded", err)
	}
	n.Heal("broker-1", "etcd-0")
	if err := check(5 * time.Second); err != nil {
		t.Fatalf("check after heal: %v", err)
	}
	if n.Bytes("broker-1", "etcd-0") == 0 {
		t.Fatal("no gRPC bytes counted")
	}
}
