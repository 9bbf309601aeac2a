package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/segmentio/kafka-go"
)

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{nil, 0, "Commands:"},
		{[]string{"help"}, 0, "run "},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"broker", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"broker", "--listen", "127.0.0.1:0"}, 2, "--data is required"},
		{[]string{"broker", "-h"}, 0, "--fsync"},
		{[]string{"broker", "-h"}, 0, "Control plane nameserver (--control-plane nameserver or --nameservers)"},
		{[]string{"broker", "--etcd", "127.0.0.1:1", "--nameservers", "127.0.0.1:2", "--data", "d"}, 2, "several control planes (coordinator, nameserver)"},
		{[]string{"broker", "--control-plane", "bogus", "--data", "d"}, 2, `"bogus": want one of coordinator, nameserver, nameserver-controller, gossip, gossip-ring, standalone`},
		{[]string{"broker", "--control-plane=coordinator", "--nameservers", "127.0.0.1:2", "--data", "d"}, 2, "flag provided but not defined: -nameservers"},
		{[]string{"help"}, 0, "kafka-external"},
		{[]string{"run"}, 2, "exactly one scenario file"},
		{[]string{"run", "no-such.yaml"}, 1, "no-such.yaml"},
		{[]string{"run", "--runtime", "vm", "../../scenarios/quickstart.yaml"}, 2, "want inprocess, docker or swarm"},
		{[]string{"run", "--memory-limit", "lots", "../../scenarios/quickstart.yaml"}, 2, `--memory-limit: memlimit: bad limit: "lots" is not a size`},
		{[]string{"run", "--memory-limit", "1MiB", "../../scenarios/quickstart.yaml"}, 2, "below the minimum 32 MiB"},
		{[]string{"run", "-h"}, 0, "-memory-limit string"},
		{[]string{"run", "--memory-limit", "-3", "../../scenarios/control-plane-scale.yaml"}, 2, "--memory-limit: memlimit: bad limit"},
		{[]string{"report"}, 2, "needs the directory"},
		{[]string{"compare", "missing.json"}, 1, "missing.json"},
		{[]string{"produce", "--bogus"}, 2, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), c.out) {
				t.Fatalf("output lacks %q:\n%s%s", c.out, stdout.String(), stderr.String())
			}
		})
	}
}

// TestHelpTopologiesAligned: the topology table's family and description
// columns start at one column whatever the longest name (a fixed width let
// nameserver-controller push its row out of line).
func TestHelpTopologiesAligned(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	_, table, ok := strings.Cut(out.String(), "Topologies (")
	if !ok {
		t.Fatalf("no topology table:\n%s", out.String())
	}
	families := map[string]bool{"kafka": true, "rocketmq": true, "decentralised": true, "reference": true}
	col, rows := -1, 0
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) < 3 || !families[f[1]] {
			continue
		}
		at := strings.Index(line, " "+f[1]+" ") + 1
		if col >= 0 && at != col {
			t.Errorf("family of %s at column %d, others at %d:\n%s", f[0], at, col, table)
		}
		col = at
		rows++
	}
	if rows < 5 {
		t.Fatalf("found %d topology rows:\n%s", rows, table)
	}
}

func TestBadScenarioNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("name: bad\nworkload:\n  rate: fast\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "bad.yaml:3") || !strings.Contains(stderr.String(), "workload.rate") {
		t.Fatalf("error does not name file, line and field: %s", stderr.String())
	}
}

// TestKill9FsyncAlways runs the real binary with --fsync always, SIGKILLs
// it under load, restarts it on the same data dir and reads back every
// acknowledged message.
func TestKill9FsyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "brokerlab")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "broker", "--listen", addr, "--data", data, "--fsync", "always", "--log-level", "warn")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if !strings.Contains(line, "serving Kafka protocol") {
			t.Fatalf("broker did not start: %q", line)
		}
		return cmd
	}
	cmd := start()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: "k9", NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	testutil.Eventually(t, 10*time.Second, func() error {
		c, err := kafka.DialLeader(context.Background(), "tcp", addr, "k9", 1)
		if err == nil {
			c.Close()
		}
		return err
	})
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "k9", RequiredAcks: kafka.RequireOne, Transport: &kafka.Transport{},
		BatchSize: 50, BatchTimeout: time.Millisecond, MaxAttempts: 1}
	acked := map[string]bool{}
	for i := range 40 {
		batch := make([]kafka.Message, 50)
		for j := range batch {
			batch[j].Value = []byte(fmt.Sprintf("m-%d-%d", i, j))
		}
		if err := w.WriteMessages(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
		for _, m := range batch {
			acked[string(m.Value)] = true
		}
	}
	// Kill -9 while a writer is still sending.
	go func() {
		for i := 40; i < 80; i++ {
			_ = w.WriteMessages(context.Background(), kafka.Message{Value: []byte(fmt.Sprintf("late-%d", i))})
		}
	}()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	w.Close()
	start()
	got := map[string]bool{}
	for p := range 2 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "k9", Partition: p, MaxWait: 50 * time.Millisecond})
		// The restarted broker opens its partitions just after it starts
		// serving; until then it answers NOT_LEADER, as Kafka does.
		var end int64
		testutil.Eventually(t, 10*time.Second, func() error {
			c, err := kafka.DialLeader(context.Background(), "tcp", addr, "k9", p)
			if err != nil {
				return err
			}
			defer c.Close()
			end, err = c.ReadLastOffset()
			return err
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for off := int64(0); off < end; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d offset %d: %v", p, off, err)
			}
			got[string(m.Value)] = true
		}
		cancel()
		r.Close()
	}
	for v := range acked {
		if !got[v] {
			t.Fatalf("acknowledged %s missing after kill -9", v)
		}
	}
}
