package topology

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sync"
)

var (
	mu          sync.RWMutex
	descriptors = map[string]Descriptor{}
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// reserved are target words every topology has; a role cannot take them.
var reserved = []string{"broker", "leader-of", "follower-of", "killed", "all", "standalone"}

// Register adds a topology. It is meant for init functions: an invalid
// descriptor, a second one of the same name, or one that disagrees with a
// registered topology about a shared cluster field or inferring flag is a
// programming error and panics, as database/sql.Register does.
func Register(d Descriptor) {
	mu.Lock()
	defer mu.Unlock()
	if err := checkLocked(d); err != nil {
		panic("topology: Register " + d.Name + ": " + err.Error())
	}
	d.Roles = slices.Clone(d.Roles)
	descriptors[d.Name] = d
}

// checkLocked validates d against itself and the registered descriptors.
// Lock should be held.
func checkLocked(d Descriptor) error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("name %q: want [a-z][a-z0-9-]*", d.Name)
	}
	if _, dup := descriptors[d.Name]; dup {
		return fmt.Errorf("registered twice")
	}
	if d.Description == "" || d.Family == "" {
		return fmt.Errorf("description and family are required")
	}
	if d.Broker != nil && d.Broker.Flags == nil {
		return fmt.Errorf("broker plane without Flags")
	}
	seen := map[string]bool{}
	for _, r := range d.Roles {
		if !nameRE.MatchString(r.Target) || slices.Contains(reserved, r.Target) {
			return fmt.Errorf("role target %q is not a free target word", r.Target)
		}
		if seen[r.Target] {
			return fmt.Errorf("role %q listed twice", r.Target)
		}
		seen[r.Target] = true
		if r.Noun == "" || r.Min < 0 || (r.Field == "" && (r.Min != 0 || r.Default != 0)) || (r.Field != "" && r.Default < r.Min) {
			return fmt.Errorf("role %q: needs a noun, and a field when it has a minimum or default (default >= min)", r.Target)
		}
		if r.Field == "brokers" || r.Field == "timings" || r.Field == "timing_overrides" {
			return fmt.Errorf("role %q: cluster field %q is not free", r.Target, r.Field)
		}
	}
	for _, o := range descriptors {
		if d.Broker != nil && o.Broker != nil && d.Broker.Infer != "" && d.Broker.Infer == o.Broker.Infer {
			return fmt.Errorf("--%s already selects %s", d.Broker.Infer, o.Name)
		}
		for _, r := range d.Roles {
			for _, q := range o.Roles {
				if r.Field != "" && r.Field == q.Field && r.Default != q.Default {
					return fmt.Errorf("cluster field %q: default %d, %s says %d", r.Field, r.Default, o.Name, q.Default)
				}
			}
		}
	}
	return nil
}

// Lookup returns the descriptor registered under name.
func Lookup(name string) (Descriptor, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := descriptors[name]
	return d, ok
}

// All returns every registered descriptor by Order, then name.
func All() []Descriptor {
	mu.RLock()
	out := make([]Descriptor, 0, len(descriptors))
	for _, d := range descriptors {
		out = append(out, d)
	}
	mu.RUnlock()
	slices.SortFunc(out, func(a, b Descriptor) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Names returns the registered names in the order of All.
func Names() []string {
	var out []string
	for _, d := range All() {
		out = append(out, d.Name)
	}
	return out
}

// Rank is a topology's position in All; unregistered names rank last.
func Rank(name string) int {
	for i, d := range All() {
		if d.Name == name {
			return i
		}
	}
	return len(descriptors)
}

// Field is one `cluster:` key some registered topology counts its nodes in.
type Field struct {
	Name    string
	Plural  string
	Default int
}

// Fields returns the cluster fields of every registered role, once each,
// in the order of All.
func Fields() []Field {
	var out []Field
	for _, d := range All() {
		for _, r := range d.Roles {
			if r.Field == "" || slices.ContainsFunc(out, func(f Field) bool { return f.Name == r.Field }) {
				continue
			}
			out = append(out, Field{Name: r.Field, Plural: cmp.Or(r.Plural, r.Field), Default: r.Default})
		}
	}
	return out
}

// Targets returns every role's target word once, in the order of All.
func Targets() []string {
	var out []string
	for _, d := range All() {
		for _, r := range d.Roles {
			if !slices.Contains(out, r.Target) {
				out = append(out, r.Target)
			}
		}
	}
	return out
}

// Role returns d's role whose target word is target.
func (d Descriptor) Role(target string) (Role, bool) {
	for _, r := range d.Roles {
		if r.Target == target {
			return r, true
		}
	}
	return Role{}, false
}

// Check returns what is wrong with s for d: a role below its minimum, then
// whatever d.Validate finds.
func (d Descriptor) Check(s Shape) []Problem {
	var out []Problem
	for _, r := range d.Roles {
		if r.Field != "" && s.Nodes[r.Field] < r.Min {
			out = append(out, Problem{Field: "cluster." + r.Field,
				Msg: fmt.Sprintf("the %s topology needs at least %d %s", d.Name, r.Min, cmp.Or(r.Plural, r.Field))})
		}
	}
	if d.Validate != nil {
		out = append(out, d.Validate(s)...)
	}
	return out
}
