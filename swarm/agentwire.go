package swarm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// The fault agent protocol. The runner dials the agent of the swarm node
// that runs a task (a `brokerlab faultagent` task of the run's global
// service, at its published port) and sends requests, one at a time on a
// connection, each answered by one reply. Frames are the load generator
// protocol's (wire.go): kind uint8 | length uint32 | body.
//
//	runner -> agent   kind 30  JSON agentRequest
//	agent -> runner   kind 31  JSON agentReply
//
// A request carries the run's token (the agent acts for one run only) and
// names a container of that run by its full id. The agent refuses what it
// does not know: other operations, other containers, and packet filter
// rules other than the few shapes the runtime uses (a DROP of a list of
// addresses in or out, a DROP of everything but loopback), so that its
// port grants nothing beyond the faults of the run.
const (
	frameAgentRequest = 30
	frameAgentReply   = 31
)

// Agent operations.
const (
	opHello    = "hello"    // who are you, can you filter packets
	opKill     = "kill"     // SIGKILL, answered once stopped
	opPause    = "pause"    // cgroup freezer
	opResume   = "resume"   // thaw
	opIptables = "iptables" // one rule in the container's network namespace
)

// agentRequest is one request to a fault agent.
type agentRequest struct {
	Token     string   `json:"token"`
	Op        string   `json:"op"`
	Container string   `json:"container,omitempty"`
	Rule      []string `json:"rule,omitempty"`
}

// agentReply is the agent's answer. Err is empty on success; NoFilter
// says why its node cannot run packet filter rules (hello only).
type agentReply struct {
	Err      string `json:"err,omitempty"`
	Node     string `json:"node,omitempty"`
	NoFilter string `json:"no_filter,omitempty"`
	// NotApplicable marks an Err that means "cannot here", not "failed".
	NotApplicable bool `json:"not_applicable,omitempty"`
}

// maxAddrs bounds the addresses one rule may list.
const maxAddrs = 512

// decodeRequest parses and validates a request body.
func decodeRequest(body []byte) (agentRequest, error) {
	var r agentRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return agentRequest{}, fmt.Errorf("%w: request: %v", errWire, err)
	}
	if dec.More() {
		return agentRequest{}, fmt.Errorf("%w: request: trailing data", errWire)
	}
	return r, r.validate()
}

func (r agentRequest) validate() error {
	if r.Token == "" {
		return fmt.Errorf("%w: request without a token", errWire)
	}
	switch r.Op {
	case opHello:
		if r.Container != "" || len(r.Rule) != 0 {
			return fmt.Errorf("%w: hello takes no container or rule", errWire)
		}
		return nil
	case opKill, opPause, opResume, opIptables:
	default:
		return fmt.Errorf("%w: unknown operation %q", errWire, r.Op)
	}
	if !validContainerID(r.Container) {
		return fmt.Errorf("%w: container %q is not a full container id", errWire, r.Container)
	}
	if r.Op != opIptables {
		if len(r.Rule) != 0 {
			return fmt.Errorf("%w: %s takes no rule", errWire, r.Op)
		}
		return nil
	}
	return validRule(r.Rule)
}

// validContainerID: 64 lower-case hex digits, as the engine reports them.
func validContainerID(id string) bool {
	if len(id) != 64 || strings.ToLower(id) != id {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// validRule accepts the rules of docker/netfilter.go, with -I or -D:
//
//	INPUT ! -i lo -j DROP          OUTPUT ! -o lo -j DROP
//	INPUT -s ADDRS -j DROP         OUTPUT -d ADDRS -j DROP
//
// ADDRS being comma-separated IP addresses.
func validRule(rule []string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: rule %q: %s", errWire, strings.Join(rule, " "), why)
	}
	if len(rule) < 6 || (rule[0] != "-I" && rule[0] != "-D") {
		return bad("want -I or -D and a chain")
	}
	in := rule[1] == "INPUT"
	if !in && rule[1] != "OUTPUT" {
		return bad("chain must be INPUT or OUTPUT")
	}
	iface, dir := "-o", "-d"
	if in {
		iface, dir = "-i", "-s"
	}
	switch {
	case len(rule) == 7 && rule[2] == "!" && rule[3] == iface && rule[4] == "lo":
		if rule[5] != "-j" || rule[6] != "DROP" {
			return bad("want -j DROP")
		}
		return nil
	case len(rule) == 6 && rule[2] == dir:
		if rule[4] != "-j" || rule[5] != "DROP" {
			return bad("want -j DROP")
		}
		addrs := strings.Split(rule[3], ",")
		if len(addrs) > maxAddrs {
			return bad("too many addresses")
		}
		for _, a := range addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				return bad("not an address list")
			}
		}
		return nil
	}
	return bad("not a rule of the runtime's")
}

// decodeReply parses a reply body.
func decodeReply(body []byte) (agentReply, error) {
	var r agentReply
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return agentReply{}, fmt.Errorf("%w: reply: %v", errWire, err)
	}
	if dec.More() {
		return agentReply{}, fmt.Errorf("%w: reply: trailing data", errWire)
	}
	return r, nil
}
