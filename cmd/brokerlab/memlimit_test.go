package main

import (
	"bytes"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

// TestMemoryGovernor: run's -memory-limit becomes the runtime's soft limit
// (400MiB by default), off and GOMEMLIMIT leave the runtime alone unless the
// flag is given, and Close restores the limit found before.
func TestMemoryGovernor(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name  string
		args  []string
		env   string
		limit int64  // the runtime's limit after Start; 0: no governor
		out   string // on stdout
	}{
		{name: "default", limit: 400 << 20, out: "memory limit: 400MiB soft"},
		{name: "given", args: []string{"-memory-limit", "1GiB"}, limit: 1 << 30, out: "memory limit: 1GiB soft"},
		{name: "off", args: []string{"-memory-limit=off"}, out: "memory limit: none"},
		{name: "environment", env: "300MiB", out: "GOMEMLIMIT=300MiB (from the environment)"},
		{name: "flag over environment", args: []string{"-memory-limit", "600MiB"}, env: "300MiB", limit: 600 << 20, out: "memory limit: 600MiB soft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			const before = 5 << 30
			debug.SetMemoryLimit(before)
			fs := newFlagSet("run", "run", io.Discard)
			value := fs.String("memory-limit", "400MiB", "")
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			g, err := memoryGovernor(fs, *value, &stdout, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Fatalf("stdout %q lacks %q", stdout.String(), tc.out)
			}
			if tc.limit == 0 {
				if g != nil {
					t.Fatal("a governor where none was wanted")
				}
				return
			}
			if g == nil {
				t.Fatal("no governor")
			}
			g.Start()
			if got := debug.SetMemoryLimit(-1); got != tc.limit {
				t.Fatalf("runtime limit %d after Start, want %d", got, tc.limit)
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetMemoryLimit(-1); got != before {
				t.Fatalf("runtime limit %d after Close, want %d", got, before)
			}
		})
	}
}
