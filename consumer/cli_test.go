package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/producer"
)

// TestCLIs produces with `brokerlab produce` (creating the topic) and reads
// back with `brokerlab consume`, both against a real broker.
func TestCLIs(t *testing.T) {
	b := brokertest.Standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := producer.RunCLI(ctx, []string{"--bootstrap", b.Addr(), "--topic", "cli", "--create", "2",
		"--rate", "2000", "--count", "300", "--size", "100B", "--acks", "all", "--compression", "lz4"}, &out, &errOut)
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, errOut.String())
	}
	t.Logf("produce:\n%s", out.String())
	if !strings.Contains(out.String(), "acked 300 ") || !regexp.MustCompile(`latency from intended send \(ms\): p50 [0-9.]+ .* p99 [0-9.]+`).MatchString(out.String()) {
		t.Fatalf("produce summary:\n%s", out.String())
	}

	out.Reset()
	err = consumer.RunCLI(ctx, []string{"--bootstrap", b.Addr(), "--topic", "cli", "--from-beginning", "--count", "300"}, &out, &errOut)
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 302 || !strings.HasPrefix(lines[300], "received 300 ") {
		t.Fatalf("consume printed %d lines, tail %q", len(lines), lines[max(0, len(lines)-3):])
	}
	if !regexp.MustCompile(`^[01]\t\d+\tproducer=0\tseq=\d+\tintended=\d+\t[a-z]{64}\.\.\.$`).MatchString(lines[0]) {
		t.Fatalf("message line %q", lines[0])
	}

	out.Reset()
	err = consumer.RunCLI(ctx, []string{"--bootstrap", b.Addr(), "--topic", "cli", "--from-beginning", "--to-end", "--quiet"}, &out, &errOut)
	if err != nil || !strings.HasPrefix(out.String(), "received 300 ") {
		t.Fatalf("consume --to-end: %v\n%s", err, out.String())
	}
}

func TestCLIUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"--topic", "t"}, // no discovery
		{"--bootstrap", "a:1", "--nameservers", "b:2", "--topic", "t"}, // both
		{"--bootstrap", "a:1"}, // no topic
		{"--bootstrap", "a:1", "--topic", "t", "--bogus"},
		{"--bootstrap", "a:1", "--topic", "t", "--partitions", "x"},
	} {
		var out, errOut bytes.Buffer
		if err := consumer.RunCLI(ctx, args, &out, &errOut); !errors.Is(err, consumer.ErrUsage) || errOut.Len() == 0 {
			t.Errorf("consume %v: %v, stderr %q", args, err, errOut.String())
		}
	}
	for _, args := range [][]string{
		{"--bootstrap", "a:1", "--topic", "t", "--size", "1XB"},
		{"--bootstrap", "a:1", "--topic", "t", "--acks", "2"},
		{"--bootstrap", "a:1", "--topic", "t", "--compression", "brotli"},
		{"--bootstrap", "a:1", "--topic", "t", "--style", "nats"},
		{"--bootstrap", "a:1", "--topic", "t", "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := producer.RunCLI(ctx, args, &out, &errOut); !errors.Is(err, producer.ErrUsage) || errOut.Len() == 0 {
			t.Errorf("produce %v: %v, stderr %q", args, err, errOut.String())
		}
	}
	var errOut bytes.Buffer
	if err := producer.RunCLI(ctx, []string{"-h"}, &errOut, &errOut); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "--rate") && !strings.Contains(errOut.String(), "-rate") {
		t.Errorf("produce -h: %v %q", err, errOut.String())
	}
}
