package scenario

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scale"
)

// designExampleFile holds the scenario of the design notes, also used by the
// report tests.
const designExampleFile = "testdata/design-example.yaml"

func TestParseDesignExample(t *testing.T) {
	s, err := Parse("example.yaml", readFile(t, designExampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "leader-failover" || len(s.Topologies) != 2 || s.Topologies[1] != "nameserver" {
		t.Errorf("name/topologies: %q %v", s.Name, s.Topologies)
	}
	if s.Cluster.Brokers != 3 || s.Cluster.Count("nameservers") != 2 || s.Cluster.Count("etcd") != 1 || s.Cluster.Profile != ProfileFast {
		t.Errorf("cluster: %+v", s.Cluster)
	}
	if s.Topic.Partitions != 6 || s.Topic.Replication != 3 || s.Topic.MinInsync != 2 || s.Topic.Fanout != FanoutStar {
		t.Errorf("topic: %+v", s.Topic)
	}
	w := s.Workload
	if w.Producers != 2 || w.Consumers != 2 || w.MessageSize != 1024 || s.Rate() != 20000 || w.Acks != AcksAll ||
		w.Duration != time.Minute || w.Warmup != 5*time.Second {
		t.Errorf("workload: %+v", w)
	}
	// Defaults fill what the file leaves out.
	def := DefaultSpec().Workload
	if w.BatchSize != def.BatchSize || w.Linger != def.Linger || w.Drain != def.Drain || s.Runtime != RuntimeInProcess {
		t.Errorf("defaults not applied: %+v runtime %q", w, s.Runtime)
	}
	if len(s.Faults) != 2 {
		t.Fatalf("faults: %+v", s.Faults)
	}
	f := s.Faults[0]
	if f.At != 20*time.Second || f.Action != ActionKill || f.Target.Kind != TargetLeaderOf ||
		f.Target.Topic != "bench" || f.Target.Partition != 0 || f.Line != 8 {
		t.Errorf("fault 0: %+v", f)
	}
	if s.Faults[1].Action != ActionRestart || s.Faults[1].Target.Kind != TargetKilled {
		t.Errorf("fault 1: %+v", s.Faults[1])
	}
	if got := s.Timings(); got.BrokerLease != 2*time.Second || got.BrokerExpiry != 4*time.Second {
		t.Errorf("fast timings: %+v", got)
	}
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s Spec)
	}{
		{"defaults and name from file", `topologies: [coordinator]`, func(t *testing.T, s Spec) {
			if s.Name != "forms" {
				t.Errorf("name %q", s.Name)
			}
			if s.Topic.MinInsync != 2 || s.Cluster.Profile != ProfileProduction {
				t.Errorf("defaults: %+v %+v", s.Topic, s.Cluster)
			}
		}},
		{"min_insync derived from replication", "topologies: [coordinator]\ncluster: {brokers: 1}\ntopic: {replication: 1}", func(t *testing.T, s Spec) {
			if s.Topic.MinInsync != 1 {
				t.Errorf("min_insync %d", s.Topic.MinInsync)
			}
		}},
		{"timings mapping with overrides", "cluster:\n  timings: {profile: fast, broker_lease: 3s, route_poll: 250ms}", func(t *testing.T, s Spec) {
			got := s.Timings()
			want, _ := Profile(ProfileFast)
			want.BrokerLease, want.RoutePoll = 3*time.Second, 250*time.Millisecond
			if got != want {
				t.Errorf("timings %+v, want %+v", got, want)
			}
		}},
		{"overrides on production", "cluster: {timings: {broker_lease: 6s}}", func(t *testing.T, s Spec) {
			if got := s.Timings(); got.BrokerLease != 6*time.Second || got.BrokerExpiry != 120*time.Second {
				t.Errorf("timings %+v", got)
			}
		}},
		{"rate forms", "workload: {rate: [1000, 2k, 5000/s, max]}", func(t *testing.T, s Spec) {
			want := []float64{1000, 2000, 5000, 0}
			if len(s.Workload.Rates) != 4 {
				t.Fatalf("rates %v", s.Workload.Rates)
			}
			for i := range want {
				if s.Workload.Rates[i] != want[i] {
					t.Errorf("rates %v, want %v", s.Workload.Rates, want)
				}
			}
		}},
		{"unbounded rate", "workload: {rate: max}", func(t *testing.T, s Spec) {
			if s.Rate() != 0 {
				t.Errorf("rate %v", s.Rate())
			}
		}},
		{"acks and sizes", "workload: {acks: 1, message_size: 512B, batch_size: 10, linger: 0}", func(t *testing.T, s Spec) {
			if s.Workload.Acks != AcksLeader || s.Workload.MessageSize != 512 || s.Workload.Linger != 0 {
				t.Errorf("%+v", s.Workload)
			}
		}},
		{"topologies as a string", "topologies: coordinator, jetstream", func(t *testing.T, s Spec) {
			if len(s.Topologies) != 2 || s.Topologies[1] != "jetstream" {
				t.Errorf("%v", s.Topologies)
			}
		}},
		{"faults sorted by time, links and parameters", `
topologies: [coordinator]
cluster: {brokers: 3, etcd: 3}
faults:
  - {at: 30s, heal: all}
  - {at: 10s, delay: broker 0 - broker 1, latency: 50ms, jitter: 5ms, for: 5s}
  - {at: 20s, cut: leader-of bench/1-etcd 2}
  - {at: 25s, pause: controller, for: 2s}
  - {at: 26s, isolate: follower-of bench/2}
`, func(t *testing.T, s Spec) {
			var got []string
			for _, f := range s.Faults {
				got = append(got, f.String())
			}
			want := []string{
				"10s delay broker 0 - broker 1 by 50ms for 5s",
				"20s cut leader-of bench/1 - etcd 2",
				"25s pause controller for 2s",
				"26s isolate follower-of bench/2",
				"30s heal all",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("faults:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if s.Faults[0].Line != 6 || s.Faults[0].Jitter != 5*time.Millisecond {
				t.Errorf("fault line/jitter: %+v", s.Faults[0])
			}
		}},
		{"booleans and modes", "topic: {unclean_election: yes, replication_mode: async, fanout: chain}", func(t *testing.T, s Spec) {
			if !s.Topic.UncleanElection || s.Topic.ReplicationMode != ReplAsync || s.Topic.Fanout != FanoutChain {
				t.Errorf("%+v", s.Topic)
			}
		}},
		{"external bootstrap", "topologies: [kafka-external]\nexternal: {bootstrap: [a:9092, b:9092]}", func(t *testing.T, s Spec) {
			if len(s.External.Bootstrap) != 2 || s.External.Bootstrap[1] != "b:9092" {
				t.Errorf("%+v", s.External)
			}
		}},
		{"anchors", "workload: &w {producers: 3}\n", func(t *testing.T, s Spec) {
			if s.Workload.Producers != 3 {
				t.Errorf("%+v", s.Workload)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("forms.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error, with file, line and field
	}{
		{"unknown top-level field", "name: x\nworklaod: {}", "bad.yaml:2: worklaod: unknown field"},
		{"unknown nested field", "workload:\n  producers: 1\n  ratee: 5", "bad.yaml:3: workload.ratee: unknown field"},
		{"bad rate", "workload:\n  rate: fast", `bad.yaml:2: workload.rate: "fast" is not a rate`},
		{"bad rate in sweep", "workload:\n  rate: [1000, lots]", "bad.yaml:2: workload.rate[1]:"},
		{"negative rate", "workload: {rate: -5}", "workload.rate: \"-5\" is negative"},
		{"duration without unit", "workload:\n  duration: 60", `bad.yaml:2: workload.duration: "60" has no unit`},
		{"bad size", "workload:\n  message_size: 1 furlong", "bad.yaml:2: workload.message_size:"},
		{"bad acks", "workload: {acks: 2}", "workload.acks: \"2\": want 0, 1 or all"},
		{"int not int", "cluster: {brokers: three}", `cluster.brokers: "three" is not an integer`},
		{"mapping expected", "cluster: 3", "bad.yaml:1: cluster: want a mapping"},
		{"repeated field", "cluster:\n  brokers: 3\n  brokers: 4", "bad.yaml:3: cluster.brokers: repeated field"},
		{"unknown topology", "topologies: [coordinator, zookeeper]", "bad.yaml:1: topologies[1]: \"zookeeper\" is not one of coordinator, nameserver, nameserver-controller, gossip, gossip-ring, jetstream, kafka-external"},
		{"duplicate topology", "topologies: [coordinator, coordinator]", "topologies[1]: \"coordinator\" listed twice"},
		{"unknown runtime", "runtime: vm", "bad.yaml:1: runtime: \"vm\" is not one of inprocess, docker, swarm"},
		{"unknown profile", "cluster: {timings: slow}", "cluster.timings: unknown profile \"slow\""},
		{"unknown timing key", "cluster:\n  timings:\n    profile: fast\n    lease: 2s", "bad.yaml:4: cluster.timings.lease: unknown field"},
		{"heartbeat past expiry", "cluster: {timings: {profile: fast, heartbeat: 10s}}", "heartbeat 10s must be shorter than broker_expiry"},
		{"replication exceeds brokers", "cluster: {brokers: 2}\ntopic:\n  replication: 3", "bad.yaml:3: topic.replication: 3 exceeds cluster.brokers 2"},
		{"min_insync too high", "topic:\n  min_insync: 4", "bad.yaml:2: topic.min_insync: 4 out of range"},
		{"nameserver groups", "topologies: [nameserver]\ncluster: {brokers: 4}\ntopic: {replication: 3}", "not divisible"},
		{"bad topic name", "topic: {name: 'a b'}", "topic.name: \"a b\" is not a legal topic name"},
		{"bad fanout", "topic: {fanout: mesh}", "topic.fanout: \"mesh\" is not one of star, chain"},
		{"warmup too long", "workload: {duration: 10s, warmup: 10s}", "workload.warmup: 10s leaves nothing"},
		{"empty", "", "bad.yaml: empty scenario"},
		{"not a mapping", "- a\n- b", "want a mapping"},
		{"yaml syntax", "name: [x\n", "bad.yaml"},
		{"fault without action", "faults:\n  - {at: 5s}", "bad.yaml:2: faults[0]: no action"},
		{"fault without at", "faults:\n  - {kill: broker 0}", "bad.yaml:2: faults[0].at: missing"},
		{"two actions", "faults:\n  - {at: 1s, kill: broker 0, pause: broker 1}", "two actions"},
		{"unknown fault field", "faults:\n  - at: 1s\n    kill: broker 0\n    four: 2s", "bad.yaml:4: faults[0].four: unknown field"},
		{"bad target", "faults:\n  - {at: 1s, kill: the leader}", `bad.yaml:2: faults[0].kill: "the leader": unknown target`},
		{"broker out of range", "faults:\n  - {at: 1s, kill: broker 3}", "bad.yaml:2: faults[0]: broker 3: cluster has brokers 0 to 2"},
		{"leader-of other topic", "faults:\n  - {at: 1s, kill: leader-of other/0}", `leader-of other/0: the scenario's topic is "bench"`},
		{"leader-of partition out of range", "faults:\n  - {at: 1s, kill: leader-of bench/9}", "topic has partitions 0 to 2"},
		{"fault after the run", "workload: {duration: 10s, warmup: 1s}\nfaults:\n  - {at: 11s, kill: broker 0}", "bad.yaml:3: faults[0].at: 11s is outside the run"},
		{"restart killed before kill", "faults:\n  - {at: 1s, restart: killed}", "no earlier fault kills or pauses one"},
		{"kill a link", "faults:\n  - {at: 1s, kill: broker 0 - broker 1}", "kill needs a node"},
		{"cut a node", "faults:\n  - {at: 1s, cut: broker 0}", "cut needs a link"},
		{"delay without latency", "faults:\n  - {at: 1s, delay: broker 0 - broker 1}", "delay needs latency"},
		{"latency on kill", "faults:\n  - {at: 1s, kill: broker 0, latency: 5ms}", "kill takes no latency"},
		{"for on restart", "faults:\n  - {at: 1s, kill: broker 0}\n  - {at: 2s, restart: killed, for: 1s}", "restart takes no \"for\""},
		{"link to itself", "faults:\n  - {at: 1s, cut: broker 1 - broker1}", "two different nodes"},
		{"controller without coordinator", "topologies: [nameserver]\nfaults:\n  - {at: 1s, kill: controller}", "applies to none of the topologies"},
		{"nameserver index", "faults:\n  - {at: 1s, kill: nameserver 2}", "cluster has name servers 0 to 1"},
		{"bad boolean", "topic: {unclean_election: maybe}", `topic.unclean_election: "maybe" is not true or false`},
		{"value expected", "name: {a: 1}", "bad.yaml:1: name: want a value, got a mapping"},
		{"list where value expected", "workload: {duration: [1s]}", "workload.duration: want a value, got a list"},
		{"null value", "workload: {acks: }", "workload.acks: want a value, got nothing"},
		{"faults not a list", "faults: {at: 1s}", "faults: want a list of faults"},
		{"clients on a kill", "faults:\n  - {at: 1s, kill: broker 0, clients: keep}", "bad.yaml:2: faults[0]: kill takes no clients"},
		{"bad clients", "faults:\n  - at: 1s\n    isolate: broker 0\n    clients: some", `bad.yaml:2: faults[0]: clients: "some", want keep or cut`},
		{"clients not a value", "faults:\n  - at: 1s\n    isolate: broker 0\n    clients: [keep]", "bad.yaml:4: faults[0].clients: want a value, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestParseReportsSeveralErrors(t *testing.T) {
	_, err := Parse("multi.yaml", []byte("cluster:\n  brokers: 0\nworkload:\n  producers: 0\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"multi.yaml:2: cluster.brokers: 0 out of range", "multi.yaml:4: workload.producers: 0 out of range"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestValidateSpecBuiltInGo(t *testing.T) {
	s := DefaultSpec()
	s.Name = "go-built"
	s.Topic.MinInsync = 2
	if err := s.Validate(); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	s.Faults = []Fault{{At: time.Second, Action: ActionRestart, Target: Target{Kind: TargetKilled}}}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "faults[0]: \"killed\" refers to no node") {
		t.Errorf("got %v", err)
	}
}

func TestParseTargetRoundTrip(t *testing.T) {
	for _, in := range []string{
		"broker 0", "broker12", "leader-of my-topic.v2/11", "follower-of bench/0", "controller",
		"nameserver 1", "nameserver", "etcd", "etcd 2", "killed", "all",
		"broker 0 - broker 1", "leader-of a-b/3-broker 2", "nameserver - broker 1",
	} {
		tg, err := ParseTarget(in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", in, err)
			continue
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again.String() != tg.String() {
			t.Errorf("%q -> %q -> %q, %v", in, tg, again, err)
		}
	}
	tg, _ := ParseTarget("leader-of a-b/3-broker 2")
	if tg.Kind != TargetLink || tg.Link[0].Topic != "a-b" || tg.Link[0].Partition != 3 || tg.Link[1].Index != 2 {
		t.Errorf("link parsed as %+v", tg)
	}
	for _, in := range []string{"", "broker", "broker x", "leader-of bench", "leader-of /1", "leader-of bench/x",
		"broker 1 -", "broker 1 - all", "broker 1 broker 2", "broker 1 - broker 2 - broker 3", "broker 1234567890"} {
		if tg, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want error", in, tg)
		}
	}
}

func TestAppliesTo(t *testing.T) {
	tests := []struct {
		target string
		want   map[Topology]bool
	}{
		{"controller", map[Topology]bool{"coordinator": true, "nameserver": false, "jetstream": false}},
		{"etcd 0", map[Topology]bool{"coordinator": true, "nameserver": false}},
		{"nameserver 0", map[Topology]bool{"coordinator": false, "nameserver": true}},
		{"leader-of bench/0", map[Topology]bool{"coordinator": true, "nameserver": true, "jetstream": true}},
		{"broker 0 - etcd", map[Topology]bool{"coordinator": true, "nameserver": false}},
	}
	for _, tt := range tests {
		tg, err := ParseTarget(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		for topo, want := range tt.want {
			if got := (Fault{Action: ActionKill, Target: tg}).AppliesTo(topo); got != want {
				t.Errorf("%s applies to %s: %v, want %v", tt.target, topo, got, want)
			}
		}
	}
}

func TestUnits(t *testing.T) {
	sizes := map[string]int64{"512B": 512, "1KiB": 1024, "1.5MiB": 1572864, "1KB": 1000, "4096": 4096, "2 kib": 2048}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "-1KiB", "1 furlong"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
	for n, want := range map[int64]string{1024: "1KiB", 1500: "1500B", 1 << 20: "1MiB", 0: "0B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	rates := map[string]float64{"2000": 2000, "2k": 2000, "1.5M": 1.5e6, "300/s": 300, "max": 0, "MAX": 0, "0": 0, "100msg/s": 100}
	for in, want := range rates {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1", "NaN", "Inf", "1e400"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q): no error", in)
		}
	}
	for r, want := range map[float64]string{0: "max", 2000: "2000/s", 25000: "25k/s", 2e6: "2M/s", 1234.5: "1234.5/s"} {
		if got := FormatRate(r); got != want {
			t.Errorf("FormatRate(%v) = %q, want %q", r, got, want)
		}
	}
	if d, err := ParseDuration("1m30s"); err != nil || d != 90*time.Second {
		t.Errorf("ParseDuration: %v %v", d, err)
	}
}

func TestTimingProfilesMatchDesign(t *testing.T) {
	prod, _ := Profile(ProfileProduction)
	fast, _ := Profile(ProfileFast)
	want := map[string][2]time.Duration{
		"broker_lease":     {18 * time.Second, 2 * time.Second},
		"replica_lag_max":  {30 * time.Second, 3 * time.Second},
		"metadata_max_age": {300 * time.Second, 5 * time.Second},
		"heartbeat":        {30 * time.Second, time.Second},
		"scan_interval":    {5 * time.Second, 500 * time.Millisecond},
		"broker_expiry":    {120 * time.Second, 4 * time.Second},
		"route_poll":       {30 * time.Second, time.Second},
	}
	pf, ff := prod.fields(), fast.fields()
	if len(pf) != len(want) {
		t.Fatalf("%d timing values, want %d", len(pf), len(want))
	}
	for i := range pf {
		w := want[pf[i].key]
		if *pf[i].d != w[0] || *ff[i].d != w[1] {
			t.Errorf("%s: production %v fast %v, want %v %v", pf[i].key, *pf[i].d, *ff[i].d, w[0], w[1])
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, []byte("workload:\n  rate: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: workload.rate") {
		t.Errorf("Load error %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("no error for a missing file")
	}
}

// TestCatalogue parses every scenario of the catalogue (scenarios/*.yaml).
func TestCatalogue(t *testing.T) {
	const catalogue = ".."
	files, err := filepath.Glob(filepath.Join(catalogue, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	want := []string{"quickstart.yaml", "leader-failover.yaml", "follower-partition.yaml", "nameserver-loss.yaml",
		"coordinator-loss.yaml", "throughput.yaml", "control-plane-scale.yaml"}
	for _, w := range want {
		found := false
		for _, f := range files {
			found = found || f == w
		}
		if !found {
			t.Errorf("catalogue lacks %s", w)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(catalogue, f))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), "#") {
				t.Errorf("%s does not begin with a comment block saying what it shows", f)
			}
			if scale.IsSweep(data) { // a control-plane-only sweep, run by package scale
				if _, err := scale.ParseSweep(f, data); err != nil {
					t.Fatal(err)
				}
				return
			}
			s, err := Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name+".yaml" != f {
				t.Errorf("name %q does not match file %s", s.Name, f)
			}
			if f == "quickstart.yaml" {
				checkQuickstart(t, s)
			}
		})
	}
}

// checkQuickstart holds quickstart.yaml to its promise: the four
// topologies of the quickstart in under two minutes on 2 cores.
func checkQuickstart(t *testing.T, s Spec) {
	for _, topo := range []Topology{"coordinator", "nameserver", "nameserver-controller", "jetstream"} {
		if !s.Has(topo) {
			t.Errorf("quickstart lacks %s", topo)
		}
	}
	if s.Cluster.Profile != ProfileFast {
		t.Errorf("quickstart timings %q", s.Cluster.Profile)
	}
	perRun := s.Workload.Duration + 5*time.Second // drain and start-up
	if total := time.Duration(len(s.Topologies)*len(s.Workload.Rates)) * perRun; total > 110*time.Second {
		t.Errorf("quickstart needs about %v, more than the 2-minute budget allows", total)
	}
	var kill bool
	for _, f := range s.Faults {
		kill = kill || (f.Action == ActionKill && f.Target.Kind == TargetLeaderOf)
	}
	if !kill {
		t.Error("quickstart has no leader kill")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFile(f, designExampleFile))
	f.Add([]byte("faults:\n  - {at: 1s, cut: leader-of bench/0 - broker 2, for: 1s}"))
	f.Add([]byte("cluster: {timings: {profile: fast, heartbeat: 1s}}\nworkload: {rate: [1, 2k, max]}"))
	f.Add([]byte("workload: {rate_search: {p99_below: 50ms, start: 5k, max: 200k, min: 1k, steps: 6, keep_up: 95%, precision: 0.1}}"))
	f.Add([]byte("cluster: {placement: {brokers: [a, zone=east], clients: b, etcd: [c]}}"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("workload: &w {producers: 3}\ntopic: *w"))
	if files, err := filepath.Glob("../*.yaml"); err == nil {
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil && !scale.IsSweep(data) {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
		for _, fl := range s.Faults {
			if _, err := ParseTarget(fl.Target.String()); err != nil {
				t.Fatalf("target %q does not round-trip: %v", fl.Target, err)
			}
		}
		for role, sels := range s.Cluster.Placement {
			for _, sel := range sels {
				if !ValidSelector(sel) {
					t.Fatalf("placement.%s: %q accepted", role, sel)
				}
			}
		}
	})
}

func TestTimeline(t *testing.T) {
	s, err := Parse("timeline.yaml", []byte(`
cluster: {brokers: 3}
faults:
  - {at: 10s, kill: leader-of bench/0, for: 5s}
  - {at: 12s, cut: broker 0 - broker 1, for: 10s}
  - {at: 15s, pause: broker 2}
  - {at: 20s, resume: killed}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range s.Timeline() {
		line := st.At.String() + " " + string(st.Action) + " " + st.Target.String()
		if st.Revert >= 0 {
			line += " (reverts " + strconv.Itoa(st.Revert) + ")"
		}
		got = append(got, line)
	}
	want := []string{
		"10s kill leader-of bench/0",
		"12s cut broker 0 - broker 1",
		"15s pause broker 2",
		"15s restart leader-of bench/0 (reverts 0)",
		"20s resume killed",
		"22s heal broker 0 - broker 1 (reverts 1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestClusterJSONRoundTrip: the role counts sit beside brokers in
// result.json, as they do in the YAML, and read back into Nodes.
func TestClusterJSONRoundTrip(t *testing.T) {
	c := Cluster{Brokers: 3, Nodes: map[string]int{"etcd": 1, "nameservers": 2, "zz-unregistered": 4}, Profile: ProfileFast}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"brokers":3,"etcd":1,"nameservers":2,"zz-unregistered":4,"timings":"fast","timing_overrides":{`) {
		t.Fatalf("%s", b)
	}
	var back Cluster
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Brokers != 3 || back.Profile != ProfileFast || len(back.Nodes) != 3 || back.Count("zz-unregistered") != 4 || back.Count("nameservers") != 2 {
		t.Fatalf("%+v", back)
	}
	if err := json.Unmarshal([]byte(`{"brokers":1,"etcd":"x"}`), &back); err == nil {
		t.Fatal("a non-integer count must not read")
	}
}

// TestParseIsolateClientsKeep: isolate takes clients: keep, which the
// fault's text form shows and its revert (a heal) does not carry.
func TestParseIsolateClientsKeep(t *testing.T) {
	s, err := Parse("k.yaml", []byte("topologies: [coordinator]\nfaults:\n  - {at: 1s, isolate: leader-of bench/0, clients: keep, for: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := s.Faults[0]
	if f.Action != ActionIsolate || f.Clients != ClientsKeep || f.Line != 3 {
		t.Fatalf("fault %+v", f)
	}
	if got, want := f.String(), "1s isolate leader-of bench/0 clients keep for 2s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	steps := s.Timeline()
	if len(steps) != 2 || steps[1].Action != ActionHeal || steps[1].Revert != 0 || steps[1].Clients != "" {
		t.Errorf("timeline %+v, want the isolate and its heal", steps)
	}
}

// TestParseAcksSweep: acks takes a list, a sweep whose first entry is the
// workload's acks; bad or repeated entries are errors with their line.
func TestParseAcksSweep(t *testing.T) {
	s, err := Parse("a.yaml", []byte("workload:\n  acks: [all, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Workload; w.Acks != AcksAll || !slices.Equal(w.AcksSweep, []int{AcksAll, AcksLeader}) {
		t.Fatalf("acks %d, sweep %v", w.Acks, w.AcksSweep)
	}
	for yaml, want := range map[string]string{
		"workload:\n  acks: [all, 2]": `a.yaml:2: workload.acks[1]: "2": want 0, 1 or all`,
		"workload:\n  acks: [1, 1]":   "workload.acks[1]: 1: want 0, 1 or all, each once",
		"workload:\n  acks: []":       "a.yaml:2: workload.acks: empty list of acks",
	} {
		if _, err := Parse("a.yaml", []byte(yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}

func TestParseLossFault(t *testing.T) {
	s, err := Parse("l.yaml", []byte("topologies: [coordinator]\nfaults:\n  - {at: 1s, loss: broker 0 - broker 1, percent: 5%, for: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Faults[0]; f.Action != ActionLoss || f.Percent != 5 || f.Target.Kind != TargetLink {
		t.Fatalf("fault %+v", f)
	}
	for _, bad := range []string{"percent: 0", "percent: 101", "percent: lots"} {
		if _, err := Parse("l.yaml", []byte("topologies: [coordinator]\nfaults:\n  - {at: 1s, loss: broker 0 - broker 1, "+bad+"}\n")); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := Parse("l.yaml", []byte("topologies: [coordinator]\nfaults:\n  - {at: 1s, cut: broker 0 - broker 1, percent: 5}\n")); err == nil {
		t.Error("percent on a cut accepted")
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParsePlacement: cluster.placement pins roles to machines by host
// name, node id or label; a role or selector it does not know is an error
// at its file and line, and the placement survives the result's JSON.
func TestParsePlacement(t *testing.T) {
	s, err := Parse("p.yaml", []byte(`topologies: [nameserver]
cluster:
  brokers: 3
  placement:
    brokers: [host-a, zone=east]
    nameservers: host-b
    clients: [host-c]
`))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Cluster
	if got := c.PlacementOf("broker"); !slices.Equal(got, []string{"host-a", "zone=east"}) {
		t.Errorf("brokers: %q", got)
	}
	if got := c.PlacementOf("nameserver"); !slices.Equal(got, []string{"host-b"}) {
		t.Errorf("name servers: %q", got)
	}
	if got := c.PlacementOf("client"); !slices.Equal(got, []string{"host-c"}) {
		t.Errorf("clients: %q", got)
	}
	if got := c.PlacementOf("etcd"); got != nil {
		t.Errorf("etcd, left out: %q", got)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Cluster
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back.PlacementOf("broker"), c.PlacementOf("broker")) || back.Count("nameservers") != c.Count("nameservers") {
		t.Errorf("JSON round trip: %s -> %+v, %v", b, back, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"cluster:\n  placement:\n    zookeepers: [a]", "p.yaml:3: cluster.placement.zookeepers: unknown field (known: brokers, clients, controllers, etcd, nameservers"},
		{"cluster:\n  placement:\n    brokers:\n      - host-a\n      - 'two words'", `p.yaml:5: cluster.placement.brokers[1]: "two words": want a host name`},
		{"cluster:\n  placement:\n    brokers: [zone=]", `p.yaml:3: cluster.placement.brokers[0]: "zone=": want`},
		{"cluster:\n  placement:\n    brokers: []", "p.yaml:3: cluster.placement.brokers: want 1 to"},
		{"cluster:\n  placement: [a, b]", "p.yaml:2: cluster.placement: want a mapping"},
	} {
		_, err := Parse("p.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
