package swarm

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// The fault agent: one `brokerlab faultagent` task per swarm node (a global
// service the run deploys), which applies the run's faults to the task
// containers of its node: SIGKILL, pause and resume through its node's
// engine (the engine's socket is mounted), and packet filter rules in a
// container's network namespace through its node's own nsenter and
// iptables (the node's root file system is mounted at --host-root, and
// the agent runs them chrooted there, with CAP_SYS_ADMIN to enter the
// namespace and CAP_NET_ADMIN for the rules). The image stays FROM
// scratch: the tools are the node's.

// AgentTokenEnv carries the run's token to its agents (the service's
// environment, which only swarm managers read); every request must carry
// it.
const AgentTokenEnv = "BROKERLAB_AGENT_TOKEN"

// RunAgentCLI is `brokerlab faultagent`: serve the fault agent protocol on
// --listen until ctx ends, for the run named by --run.
func RunAgentCLI(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, listen := serverFlags("faultagent", "0.0.0.0:7071", stderr)
	run := fs.String("run", "", "the run whose containers the agent may act on (required)")
	engine := fs.String("engine", "unix:///var/run/docker.sock", "this node's engine")
	root := fs.String("host-root", "/host", "where this node's root file system is mounted (its nsenter and iptables run there)")
	logger, err := parseServerFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	token := os.Getenv(AgentTokenEnv)
	if *run == "" || token == "" {
		fmt.Fprintf(stderr, "faultagent: --run and $%s are required\n", AgentTokenEnv)
		return fmt.Errorf("%w: faultagent needs --run and $%s", ErrUsage, AgentTokenEnv)
	}
	client, err := dc.NewClient(*engine)
	if err != nil {
		return fmt.Errorf("swarm: fault agent: engine %s: %w", *engine, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	a := newAgent(token, *run, client, *root, logger)
	return a.serve(ctx, ln)
}

// agent serves one run's fault requests on one swarm node.
type agent struct {
	token, run string
	node       string
	engine     *dc.Client
	root       string // the node's root file system
	nsenter    string // paths under root; empty when missing
	iptables   string
	noFilter   string // why packet filter rules cannot run here ("" when they can)
	logger     *slog.Logger
}

func newAgent(token, run string, engine *dc.Client, root string, logger *slog.Logger) *agent {
	a := &agent{token: token, run: run, engine: engine, root: root, logger: logger}
	a.node, _ = os.Hostname()
	a.nsenter = findTool(root, "nsenter", "/usr/bin", "/bin", "/usr/sbin", "/sbin")
	a.iptables = findTool(root, "iptables", "/usr/sbin", "/sbin", "/usr/bin", "/bin")
	if a.nsenter == "" || a.iptables == "" {
		a.noFilter = fmt.Sprintf("swarm node %s has no nsenter or iptables under %s", a.node, root)
	}
	return a
}

// findTool returns the first dir/name that exists under root, as a path
// inside root; "" when none does. A symbolic link counts as it is (its
// target, often absolute such as Debian's alternatives for iptables,
// resolves inside root once chrooted there, not here).
func findTool(root, name string, dirs ...string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Lstat(filepath.Join(root, p)); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// serve answers connections on ln until ctx ends; it closes ln.
func (a *agent) serve(ctx context.Context, ln net.Listener) error {
	return serveConns(ctx, ln, func(ctx context.Context, conn net.Conn) {
		if err := a.serveConn(ctx, conn); err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
			a.logger.Warn("fault agent connection", "peer", conn.RemoteAddr().String(), "error", err)
		}
	})
}

// serveConn answers requests one at a time until the runner hangs up or
// sends a frame that is not a request (which ends the connection).
func (a *agent) serveConn(ctx context.Context, conn net.Conn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	for {
		kind, body, err := readFrame(r)
		if err != nil {
			return err
		}
		if kind != frameAgentRequest {
			return fmt.Errorf("%w: kind %d for a request", errWire, kind)
		}
		reply := a.answer(ctx, body)
		b, err := json.Marshal(reply)
		if err != nil {
			return err
		}
		if err := writeFrame(w, frameAgentReply, b); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// answer decodes, checks and applies one request.
func (a *agent) answer(ctx context.Context, body []byte) agentReply {
	req, err := decodeRequest(body)
	if err != nil {
		return agentReply{Err: err.Error()}
	}
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(a.token)) != 1 {
		return agentReply{Err: "swarm: fault agent: wrong token"}
	}
	if req.Op == opHello {
		return agentReply{Node: a.node, NoFilter: a.noFilter}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ct, err := a.engine.InspectContainerWithContext(req.Container, ctx)
	if err != nil {
		return agentReply{Err: fmt.Sprintf("swarm: fault agent on %s: %v", a.node, err)}
	}
	if ct.Config == nil || ct.Config.Labels[labelRun] != a.run {
		return agentReply{Err: fmt.Sprintf("swarm: fault agent on %s: container %.12s is not of run %s", a.node, req.Container, a.run)}
	}
	a.logger.Debug("fault", "op", req.Op, "container", req.Container[:12], "rule", strings.Join(req.Rule, " "))
	switch req.Op {
	case opKill:
		err = a.kill(ctx, ct)
	case opPause:
		err = a.engine.PauseContainer(ct.ID)
	case opResume:
		err = a.engine.UnpauseContainer(ct.ID)
	case opIptables:
		if a.noFilter != "" {
			return agentReply{Err: a.noFilter, NotApplicable: true}
		}
		err = a.filter(ctx, ct.State.Pid, req.Rule)
	}
	if err != nil {
		return agentReply{Err: fmt.Sprintf("swarm: fault agent on %s: %s: %v", a.node, req.Op, err)}
	}
	return agentReply{Node: a.node}
}

// kill SIGKILLs the container (thawing it first: a frozen process cannot
// take a signal) and waits until the engine reports it stopped.
func (a *agent) kill(ctx context.Context, ct *dc.Container) error {
	if ct.State.Paused {
		_ = a.engine.UnpauseContainer(ct.ID)
	}
	if err := a.engine.KillContainer(dc.KillContainerOptions{ID: ct.ID, Signal: dc.SIGKILL, Context: ctx}); err != nil {
		return err
	}
	return pollUntil(ctx, 20*time.Millisecond, func() error {
		c, err := a.engine.InspectContainerWithContext(ct.ID, ctx)
		if err == nil && c.State.Running {
			return errors.New("still running")
		}
		return err
	})
}

// filter runs the node's iptables in the namespace of pid, entered with the
// node's nsenter, both chrooted into the node's root file system (whose
// /proc is the node's).
func (a *agent) filter(ctx context.Context, pid int, rule []string) error {
	if pid <= 0 {
		return errors.New("the container has no process")
	}
	args := append([]string{"-t", strconv.Itoa(pid), "-n", a.iptables, "-w"}, rule...)
	cmd := exec.CommandContext(ctx, a.nsenter, args...)
	if a.root != "/" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: a.root}
		cmd.Dir = "/"
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// agentClient asks the agents of a run: one connection per request
// (faults are few), to the agent of the task's swarm node.
type agentClient struct {
	token string
	addrs map[string]string // swarm node id -> the agent's address as the runner dials it
}

// call sends one request to the agent of host and returns its reply; a
// reply's error is an error here, wrapping ErrNotApplicable when the agent
// cannot do it on its node.
func (c *agentClient) call(ctx context.Context, host string, req agentRequest) (agentReply, error) {
	addr, ok := c.addrs[host]
	if !ok {
		return agentReply{}, fmt.Errorf("%w: no fault agent on swarm node %s", errRemote, host)
	}
	req.Token = c.token
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return agentReply{}, fmt.Errorf("swarm: fault agent at %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return agentReply{}, err
	}
	w := bufio.NewWriter(conn)
	if err := writeFrame(w, frameAgentRequest, body); err != nil {
		return agentReply{}, err
	}
	if err := w.Flush(); err != nil {
		return agentReply{}, err
	}
	kind, rb, err := readFrame(bufio.NewReader(conn))
	if err != nil {
		return agentReply{}, fmt.Errorf("swarm: fault agent at %s: %w", addr, err)
	}
	if kind != frameAgentReply {
		return agentReply{}, fmt.Errorf("%w: kind %d for a reply", errWire, kind)
	}
	rep, err := decodeReply(rb)
	if err != nil {
		return agentReply{}, err
	}
	switch {
	case rep.Err != "" && rep.NotApplicable:
		return rep, fmt.Errorf("%w: %s", errNoCuts, rep.Err)
	case rep.Err != "":
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}
