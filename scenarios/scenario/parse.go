package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/brokerlab/brokerlab/topology"
)

// maxSpecBytes bounds a scenario file; real ones are a few KiB.
const maxSpecBytes = 1 << 20

// maxErrors bounds how many problems one Parse reports.
const maxErrors = 20

// Load reads and parses a scenario file.
func Load(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("scenarios: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a scenario from YAML, applies DefaultSpec to missing fields
// and validates the result. filename is used in messages only. Errors name
// file, line and field: "quickstart.yaml:12: workload.rate: ...". Several
// problems are joined into one error; each is a *SpecError wrapping
// ErrInvalidSpec.
func Parse(filename string, data []byte) (Spec, error) {
	s := DefaultSpec()
	s.File = filename
	s.lines = map[string]int{}
	d := &decoder{file: filename, spec: &s}
	if len(data) > maxSpecBytes {
		return Spec{}, d.errAt(0, "", "file is %d bytes, at most %d", len(data), maxSpecBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Spec{}, d.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Spec{}, d.errAt(0, "", "empty scenario")
	}
	d.decodeSpec(doc.Content[0])
	if len(d.errs) > 0 {
		return Spec{}, errors.Join(d.errs...)
	}
	if s.Name == "" {
		s.Name = defaultName(filename)
	}
	if s.Topic.MinInsync == 0 {
		s.Topic.MinInsync = min(2, s.Topic.Replication)
	}
	sort.SliceStable(s.Faults, func(i, j int) bool { return s.Faults[i].At < s.Faults[j].At })
	for k := range s.lines {
		if strings.HasPrefix(k, "faults[") {
			delete(s.lines, k) // indices changed by the sort; Fault.Line stands in
		}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// defaultName derives a scenario name from its file name.
func defaultName(filename string) string {
	base := strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename))
	base = strings.ToLower(base)
	var b strings.Builder
	for _, r := range base {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "scenario"
	}
	return b.String()
}

// decoder walks the YAML node tree, recording lines and collecting errors.
type decoder struct {
	file string
	spec *Spec
	errs []error
}

func (d *decoder) errAt(line int, field, format string, args ...any) error {
	return &SpecError{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, d.errAt(n.Line, field, format, args...))
	}
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into a
// SpecError with the line pulled out.
func (d *decoder) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return d.errAt(line, "", "YAML: %s", msg)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

type fieldFunc func(n *yaml.Node, path string)

// mapping decodes a mapping node through a table of fields. Unknown and
// repeated keys are errors; a null node leaves everything at its default.
func (d *decoder) mapping(n *yaml.Node, path string, fields map[string]fieldFunc) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of %s", strings.Join(sortedKeys(fields), ", "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || v == nil {
			continue
		}
		fp := join(path, k.Value)
		f, ok := fields[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.fail(k, path, "keys must be plain names")
		case !ok:
			d.fail(k, fp, "unknown field (known: %s)", strings.Join(sortedKeys(fields), ", "))
		case seen[k.Value]:
			d.fail(k, fp, "repeated field")
		default:
			seen[k.Value] = true
			d.spec.lines[fp] = k.Line
			f(v, fp)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]fieldFunc) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// scalar returns the node's text, or fails when it is not a scalar.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.fail(n, path, "want a value, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "nothing"
	}
	return "a value"
}

func (d *decoder) str(dst *string) fieldFunc {
	return value(d, dst, func(v string) (string, error) { return v, nil })
}

// value decodes a scalar through parse into dst; a parse error is the
// field's message, and dst keeps its value.
func value[T any](d *decoder, dst *T, parse func(v string) (T, error)) fieldFunc {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path)
		if !ok {
			return
		}
		x, err := parse(v)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		*dst = x
	}
}

func (d *decoder) integer(dst *int) fieldFunc {
	return value(d, dst, func(v string) (int, error) {
		i, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", v)
		}
		return int(i), nil
	})
}

func (d *decoder) boolean(dst *bool) fieldFunc {
	return value(d, dst, func(v string) (bool, error) {
		switch strings.ToLower(v) {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
		return false, fmt.Errorf("%q is not true or false", v)
	})
}

func (d *decoder) duration(dst *time.Duration) fieldFunc {
	return value(d, dst, func(v string) (time.Duration, error) {
		t, err := ParseDuration(v)
		if err == nil && t < 0 {
			err = fmt.Errorf("%q is negative", v)
		}
		return t, err
	})
}

func (d *decoder) size(dst *int) fieldFunc {
	return value(d, dst, func(v string) (int, error) {
		b, err := ParseSize(v)
		if err == nil && b > 1<<40 {
			err = fmt.Errorf("%q is too large", v)
		}
		return int(b), err
	})
}

// rates accepts one rate or a list of them (a sweep).
func (d *decoder) rates(dst *[]float64) fieldFunc {
	return func(n *yaml.Node, path string) {
		var items []*yaml.Node
		if n.Kind == yaml.SequenceNode {
			items = n.Content
			if len(items) == 0 {
				d.fail(n, path, "empty list of rates")
				return
			}
		} else {
			items = []*yaml.Node{n}
		}
		var out []float64
		for i, it := range items {
			it = resolve(it)
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			var r float64
			before := len(d.errs)
			value(d, &r, ParseRate)(it, p)
			if len(d.errs) > before {
				return
			}
			out = append(out, r)
		}
		*dst = out
	}
}

// acksList reads acks: one value into dst, or a list (a sweep) into sweep
// with its first entry in dst.
func (d *decoder) acksList(dst *int, sweep *[]int) fieldFunc {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.SequenceNode {
			d.acks(dst)(n, path)
			return
		}
		if len(n.Content) == 0 {
			d.fail(n, path, "empty list of acks")
			return
		}
		out := make([]int, len(n.Content))
		for i, it := range n.Content {
			before := len(d.errs)
			d.acks(&out[i])(resolve(it), fmt.Sprintf("%s[%d]", path, i))
			if len(d.errs) > before {
				return
			}
		}
		*dst, *sweep = out[0], out
	}
}

func (d *decoder) acks(dst *int) fieldFunc {
	return value(d, dst, func(v string) (int, error) {
		switch strings.ToLower(v) {
		case "all", "-1":
			return AcksAll, nil
		case "0", "none":
			return AcksNone, nil
		case "1", "leader":
			return AcksLeader, nil
		}
		return 0, fmt.Errorf("%q: want 0, 1 or all", v)
	})
}

func (d *decoder) strList(dst *[]string) fieldFunc {
	return func(n *yaml.Node, path string) {
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			// "a, b" as a convenience for one-line specs.
			var out []string
			for _, p := range strings.Split(n.Value, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
			*dst = out
			return
		}
		out := make([]string, 0, len(n.Content))
		ok := d.items(n, path, "a list", func(it *yaml.Node, p string) bool {
			v, ok := d.scalar(it, p)
			out = append(out, v)
			return ok
		})
		if ok {
			*dst = out
		}
	}
}

// items calls f on every item of a list node with its path ("path[i]"),
// recording the item's line, until f returns false; a node that is not a
// list fails with "want <what>". It reports whether every item passed.
func (d *decoder) items(n *yaml.Node, path, what string, f func(it *yaml.Node, p string) bool) bool {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want %s, got %s", what, kindName(n))
		return false
	}
	for i, it := range n.Content {
		it = resolve(it)
		if it == nil {
			continue
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		d.spec.lines[p] = it.Line
		if !f(it, p) {
			return false
		}
	}
	return true
}

func (d *decoder) decodeSpec(n *yaml.Node) {
	s := d.spec
	n = resolve(n)
	if n == nil || isNull(n) {
		d.fail(&yaml.Node{}, "", "empty scenario")
		return
	}
	d.mapping(n, "", map[string]fieldFunc{
		"name":        d.str(&s.Name),
		"description": d.str(&s.Description),
		"topologies":  d.strList(&s.Topologies),
		"runtime":     d.str(&s.Runtime),
		"cluster":     func(n *yaml.Node, p string) { d.decodeCluster(n, p) },
		"topic":       func(n *yaml.Node, p string) { d.decodeTopic(n, p) },
		"workload":    func(n *yaml.Node, p string) { d.decodeWorkload(n, p) },
		"faults":      func(n *yaml.Node, p string) { d.decodeFaults(n, p) },
		"repeat":      d.integer(&s.Repeat),
		"reuse":       d.boolean(&s.Reuse),
		"random":      func(n *yaml.Node, p string) { d.decodeRandom(n, p) },
		"external": func(n *yaml.Node, p string) {
			d.mapping(n, p, map[string]fieldFunc{"bootstrap": d.strList(&s.External.Bootstrap)})
		},
	})
}

func (d *decoder) decodeCluster(n *yaml.Node, path string) {
	c := &d.spec.Cluster
	fields := map[string]fieldFunc{
		"brokers":        d.integer(&c.Brokers),
		"timings":        func(n *yaml.Node, p string) { d.decodeTimings(n, p) },
		"fsync":          d.str(&c.Fsync),
		"fsync_interval": d.duration(&c.FsyncInterval),
		"placement":      func(n *yaml.Node, p string) { d.decodePlacement(n, p) },
	}
	if c.Nodes == nil {
		c.Nodes = map[string]int{}
	}
	for _, f := range topology.Fields() { // the registered topologies' node counts
		fields[f.Name] = func(n *yaml.Node, p string) {
			v := c.Nodes[f.Name]
			d.integer(&v)(n, p)
			c.Nodes[f.Name] = v
		}
	}
	d.mapping(n, path, fields)
}

// decodePlacement reads {role: [selector, ...], ...}; Validate checks the
// selectors.
func (d *decoder) decodePlacement(n *yaml.Node, path string) {
	c := &d.spec.Cluster
	if c.Placement == nil {
		c.Placement = map[string][]string{}
	}
	fields := map[string]fieldFunc{}
	for _, k := range placementKeys() {
		fields[k] = func(n *yaml.Node, p string) {
			var sels []string
			d.strList(&sels)(n, p)
			c.Placement[k] = sels
		}
	}
	d.mapping(n, path, fields)
}

// decodeTimings accepts a profile name ("fast") or a mapping with a profile
// and overrides ({profile: fast, broker_lease: 3s}).
func (d *decoder) decodeTimings(n *yaml.Node, path string) {
	c := &d.spec.Cluster
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		c.Profile = n.Value
		return
	}
	fields := map[string]fieldFunc{"profile": d.str(&c.Profile)}
	for _, f := range c.Overrides.fields() {
		fields[f.key] = d.duration(f.d)
	}
	d.mapping(n, path, fields)
}

func (d *decoder) decodeTopic(n *yaml.Node, path string) {
	t := &d.spec.Topic
	d.mapping(n, path, map[string]fieldFunc{
		"name":             d.str(&t.Name),
		"partitions":       d.integer(&t.Partitions),
		"replication":      d.integer(&t.Replication),
		"min_insync":       d.integer(&t.MinInsync),
		"fanout":           d.str(&t.Fanout),
		"unclean_election": d.boolean(&t.UncleanElection),
		"replication_mode": d.str(&t.ReplicationMode),
	})
}

func (d *decoder) decodeWorkload(n *yaml.Node, path string) {
	w := &d.spec.Workload
	d.mapping(n, path, map[string]fieldFunc{
		"producers":         d.integer(&w.Producers),
		"consumers":         d.integer(&w.Consumers),
		"message_size":      d.size(&w.MessageSize),
		"keys":              d.integer(&w.Keys),
		"rate":              d.rates(&w.Rates),
		"rate_search":       d.rateSearch(&w.RateSearch),
		"acks":              d.acksList(&w.Acks, &w.AcksSweep),
		"batch_size":        d.integer(&w.BatchSize),
		"linger":            d.duration(&w.Linger),
		"retries":           d.integer(&w.Retries),
		"unordered_retries": d.boolean(&w.UnorderedRetries),
		"timeout":           d.duration(&w.Timeout),
		"duration":          d.duration(&w.Duration),
		"warmup":            d.duration(&w.Warmup),
		"drain":             d.duration(&w.Drain),
	})
}

func (d *decoder) decodeFaults(n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	d.items(n, path, "a list of faults", func(it *yaml.Node, p string) bool {
		if f, ok := d.decodeFault(it, p); ok {
			d.spec.Faults = append(d.spec.Faults, f)
		}
		return true
	})
}

// decodeFault reads {at: 20s, kill: leader-of bench/0, for: 5s}: "at", the
// action as key with the target as value, and optional parameters.
func (d *decoder) decodeFault(n *yaml.Node, path string) (Fault, bool) {
	f := Fault{Line: n.Line}
	before := len(d.errs)
	var action, target string
	var atSet bool
	fields := map[string]fieldFunc{
		"at":      func(n *yaml.Node, p string) { atSet = true; d.duration(&f.At)(n, p) },
		"for":     d.duration(&f.For),
		"latency": d.duration(&f.Latency),
		"jitter":  d.duration(&f.Jitter),
		"clients": d.str(&f.Clients),
		"percent": value(d, &f.Percent, func(v string) (float64, error) {
			x, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "%"), 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a percentage (5, 0.5 or 5%%)", v)
			}
			return x, nil
		}),
	}
	for _, a := range Actions {
		fields[string(a)] = func(n *yaml.Node, p string) {
			if action != "" {
				d.fail(n, path, "two actions, %s and %s: one fault per entry", action, a)
				return
			}
			action = string(a)
			if v, ok := d.scalar(n, p); ok {
				target = v
			}
		}
	}
	d.mapping(n, path, fields)
	if len(d.errs) > before {
		return Fault{}, false
	}
	if action == "" {
		d.fail(n, path, "no action (one of %s)", joinActions())
		return Fault{}, false
	}
	if !atSet {
		d.fail(n, path+".at", "missing: when the fault fires, e.g. at: 20s")
		return Fault{}, false
	}
	f.Action = Action(action)
	t, err := ParseTarget(target)
	if err != nil {
		d.fail(n, path+"."+action, "%v", err)
		return Fault{}, false
	}
	f.Target = t
	if err := f.check(); err != nil {
		d.fail(n, path, "%v", err)
		return Fault{}, false
	}
	return f, true
}

func joinActions() string {
	s := make([]string, len(Actions))
	for i, a := range Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
