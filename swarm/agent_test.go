package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios"
	dc "github.com/ory/dockertest/v3/docker"
)

const testContainer = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestAgentRequestValidation: the agent takes the runtime's rules and
// refuses anything else.
func TestAgentRequestValidation(t *testing.T) {
	ok := []agentRequest{
		{Token: "t", Op: opHello},
		{Token: "t", Op: opKill, Container: testContainer},
		{Token: "t", Op: opResume, Container: testContainer},
		{Token: "t", Op: opIptables, Container: testContainer, Rule: []string{"-I", "INPUT", "!", "-i", "lo", "-j", "DROP"}},
		{Token: "t", Op: opIptables, Container: testContainer, Rule: []string{"-D", "OUTPUT", "!", "-o", "lo", "-j", "DROP"}},
		{Token: "t", Op: opIptables, Container: testContainer, Rule: []string{"-I", "INPUT", "-s", "10.0.1.2,10.0.1.3", "-j", "DROP"}},
		{Token: "t", Op: opIptables, Container: testContainer, Rule: []string{"-D", "OUTPUT", "-d", "10.0.1.2", "-j", "DROP"}},
	}
	for _, r := range ok {
		b, _ := json.Marshal(r)
		if _, err := decodeRequest(b); err != nil {
			t.Errorf("%+v refused: %v", r, err)
		}
	}
	bad := []string{
		`{"op":"hello"}`, // no token
		`{"token":"t","op":"exec","container":"` + testContainer + `"}`,
		`{"token":"t","op":"kill","container":"abc"}`,
		`{"token":"t","op":"kill","container":"` + strings.ToUpper(testContainer) + `"}`,
		`{"token":"t","op":"kill","container":"` + testContainer + `","rule":["-F"]}`,
		`{"token":"t","op":"hello","container":"` + testContainer + `"}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-F"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-A","INPUT","-s","10.0.0.1","-j","DROP"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","FORWARD","-s","10.0.0.1","-j","DROP"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","INPUT","-d","10.0.0.1","-j","DROP"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","INPUT","-s","10.0.0.1","-j","ACCEPT"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","INPUT","-s","10.0.0.1;reboot","-j","DROP"]}`,
		`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","OUTPUT","!","-i","lo","-j","DROP"]}`,
		`{"token":"t","op":"hello","extra":1}`,
		`{"token":"t","op":"hello"} {}`,
		`not json`,
	}
	for _, b := range bad {
		if r, err := decodeRequest([]byte(b)); err == nil || !errors.Is(err, errWire) {
			t.Errorf("%s accepted as %+v (%v)", b, r, err)
		}
	}
}

// TestAgentServes runs an agent on loopback (its engine is one that does
// not answer, so no container is touched) and talks to it as the runner
// does: hello answers with the node and whether it can filter; a wrong
// token, a bad rule and an unknown container are refused with an error.
func TestAgentServes(t *testing.T) {
	engine, err := dc.NewClient("unix://" + t.TempDir() + "/no-engine.sock")
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent("secret", "blswarm-test", engine, t.TempDir(), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c := &agentClient{token: "secret", addrs: map[string]string{"node-1": ln.Addr().String()}}
	rep, err := c.call(ctx, "node-1", agentRequest{Op: opHello})
	if err != nil || rep.Node == "" || rep.NoFilter == "" {
		t.Fatalf("hello: %+v, %v (an empty root has no iptables)", rep, err)
	}
	if _, err := c.call(ctx, "node-2", agentRequest{Op: opHello}); !errors.Is(err, scenarios.ErrNotApplicable) {
		t.Errorf("a node without an agent: %v", err)
	}
	wrong := &agentClient{token: "guess", addrs: c.addrs}
	if _, err := wrong.call(ctx, "node-1", agentRequest{Op: opKill, Container: testContainer}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("a wrong token: %v", err)
	}
	for _, r := range []agentRequest{
		{Op: opIptables, Container: testContainer, Rule: []string{"-F"}},
		{Op: opKill, Container: testContainer}, // the engine does not answer
	} {
		if _, err := c.call(ctx, "node-1", r); err == nil {
			t.Errorf("%+v succeeded", r)
		}
	}
}

// FuzzAgentRequest: the agent's decoder never panics, and what it accepts
// is one of the runtime's operations and survives a round trip.
func FuzzAgentRequest(f *testing.F) {
	f.Add([]byte(`{"token":"t","op":"hello"}`))
	f.Add([]byte(`{"token":"t","op":"kill","container":"` + testContainer + `"}`))
	f.Add([]byte(`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-I","INPUT","-s","10.0.1.2,fe80::1","-j","DROP"]}`))
	f.Add([]byte(`{"token":"t","op":"iptables","container":"` + testContainer + `","rule":["-D","OUTPUT","!","-o","lo","-j","DROP"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRequest(body)
		if err != nil {
			return
		}
		if !slices.Contains([]string{opHello, opKill, opPause, opResume, opIptables}, r.Op) || r.Token == "" {
			t.Fatalf("accepted %+v", r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeRequest(b)
		if err != nil || again.Op != r.Op || again.Container != r.Container || !slices.Equal(again.Rule, r.Rule) {
			t.Fatalf("round trip: %+v -> %+v, %v", r, again, err)
		}
	})
}

// FuzzAgentReply: the runner's decoder of replies never panics.
func FuzzAgentReply(f *testing.F) {
	f.Add([]byte(`{"node":"n1","no_filter":"no iptables"}`))
	f.Add([]byte(`{"err":"x","not_applicable":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = decodeReply(body)
	})
}

// TestFindToolThroughLink: a tool that is an absolute symbolic link (as
// Debian's iptables is, to /etc/alternatives) is found under a mounted
// root, where its target resolves only once chrooted there.
func TestFindToolThroughLink(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/alternatives/iptables-not-here", filepath.Join(root, "usr", "sbin", "iptables")); err != nil {
		t.Fatal(err)
	}
	if got := findTool(root, "iptables", "/usr/sbin", "/sbin"); got != "/usr/sbin/iptables" {
		t.Errorf("found %q", got)
	}
	if got := findTool(root, "nsenter", "/usr/bin"); got != "" {
		t.Errorf("a missing tool found at %q", got)
	}
}
