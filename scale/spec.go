package scale

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A scale scenario is a scenario file with `data_plane: none`:
//
//	name: control-plane-scale
//	data_plane: none
//	topologies: [coordinator, nameserver]
//	cluster: {brokers: [10, 100, 1000], timings: production}
//	topic: {partitions: [1000, 10000, 100000], replication: 3}
//	scale: {idle: 30s, settle: 10m}
//
// Every topology runs every (brokers, partitions) pair the machine can hold.

// ErrInvalidSweep wraps every problem in a scale scenario.
var ErrInvalidSweep = errors.New("scale: invalid scenario")

// Sweep is a parsed scale scenario.
type Sweep struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	File        string        `json:"file,omitempty"`
	Topologies  []string      `json:"topologies"`
	Brokers     []int         `json:"brokers"`
	Partitions  []int         `json:"partitions"`
	Replication int           `json:"replication"`
	Profile     string        `json:"timings"`
	Idle        time.Duration `json:"idle"`
	Settle      time.Duration `json:"settle"`
}

type sweepFile struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	DataPlane   string   `yaml:"data_plane"`
	Topologies  []string `yaml:"topologies"`
	Cluster     struct {
		Brokers ints   `yaml:"brokers"`
		Timings string `yaml:"timings"`
	} `yaml:"cluster"`
	Topic struct {
		Partitions  ints `yaml:"partitions"`
		Replication int  `yaml:"replication"`
	} `yaml:"topic"`
	Scale struct {
		Idle   string `yaml:"idle"`
		Settle string `yaml:"settle"`
	} `yaml:"scale"`
}

// ints accepts a number or a list of numbers.
type ints []int

func (v *ints) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var one int
		if err := n.Decode(&one); err != nil {
			return err
		}
		*v = ints{one}
		return nil
	}
	var many []int
	if err := n.Decode(&many); err != nil {
		return err
	}
	*v = many
	return nil
}

// IsSweep reports whether a scenario file asks for a control-plane-only run
// (`data_plane: none`), without validating the rest.
func IsSweep(data []byte) bool {
	var probe struct {
		DataPlane string `yaml:"data_plane"`
	}
	return yaml.Unmarshal(data, &probe) == nil && probe.DataPlane == "none"
}

// LoadSweep reads and parses a scale scenario.
func LoadSweep(path string) (Sweep, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Sweep{}, fmt.Errorf("scale: %w", err)
	}
	return ParseSweep(path, data)
}

var nameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)

// ParseSweep decodes and validates a scale scenario. Unknown fields and bad
// values are errors naming the file (and line, where YAML gives one).
func ParseSweep(file string, data []byte) (Sweep, error) {
	fail := func(format string, a ...any) (Sweep, error) {
		return Sweep{}, fmt.Errorf("%w: %s: %s", ErrInvalidSweep, file, fmt.Sprintf(format, a...))
	}
	if len(data) > 1<<20 {
		return fail("file is %d bytes, at most 1 MiB", len(data))
	}
	var f sweepFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	s := Sweep{Name: f.Name, Description: strings.TrimSpace(f.Description), File: file, Topologies: f.Topologies,
		Brokers: f.Cluster.Brokers, Partitions: f.Topic.Partitions, Replication: f.Topic.Replication, Profile: f.Cluster.Timings,
		Idle: 30 * time.Second, Settle: 10 * time.Minute}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if s.Replication == 0 {
		s.Replication = 3
	}
	if s.Profile == "" {
		s.Profile = "production"
	}
	var err error
	if f.Scale.Idle != "" {
		if s.Idle, err = time.ParseDuration(f.Scale.Idle); err != nil || s.Idle <= 0 {
			return fail("scale.idle: %q is not a positive duration", f.Scale.Idle)
		}
	}
	if f.Scale.Settle != "" {
		if s.Settle, err = time.ParseDuration(f.Scale.Settle); err != nil || s.Settle <= 0 {
			return fail("scale.settle: %q is not a positive duration", f.Scale.Settle)
		}
	}
	switch {
	case f.DataPlane != "none":
		return fail("data_plane: %q, a scale scenario has data_plane: none", f.DataPlane)
	case !nameRE.MatchString(s.Name):
		return fail("name: %q, want [a-z0-9._-]", s.Name)
	case len(s.Topologies) == 0:
		return fail("topologies: none listed (can run without a data plane: %v)", Topologies())
	case len(s.Brokers) == 0:
		return fail("cluster.brokers: a number or a list of numbers is required")
	case len(s.Partitions) == 0:
		return fail("topic.partitions: a number or a list of numbers is required")
	case s.Replication < 1 || s.Replication > 5:
		return fail("topic.replication: %d, want 1 to 5", s.Replication)
	case s.Profile != "fast" && s.Profile != "production":
		return fail("cluster.timings: %q, want fast or production", s.Profile)
	}
	for _, t := range s.Topologies {
		if !slices.Contains(Topologies(), t) {
			return fail("topologies: %q cannot run without a data plane (can: %v)", t, Topologies())
		}
	}
	for _, b := range s.Brokers {
		if b < s.Replication || b > 100000 {
			return fail("cluster.brokers: %d, want %d (the replication) to 100000", b, s.Replication)
		}
	}
	for _, p := range s.Partitions {
		if p < 1 || p > 10000000 {
			return fail("topic.partitions: %d, want 1 to 10000000", p)
		}
	}
	slices.Sort(s.Brokers)
	slices.Sort(s.Partitions)
	return s, nil
}

// Shapes lists the sweep's (brokers, partitions) pairs, smallest first.
func (s Sweep) Shapes() []Shape {
	var out []Shape
	for _, b := range s.Brokers {
		for _, p := range s.Partitions {
			out = append(out, Shape{Brokers: b, Partitions: p, Replication: s.Replication, Profile: s.Profile})
		}
	}
	return out
}
