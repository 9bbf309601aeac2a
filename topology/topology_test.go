package topology

import (
	"flag"
	"strings"
	"testing"
)

// withRegistry runs f on an empty registry and restores the real one.
func withRegistry(t *testing.T) {
	t.Helper()
	mu.Lock()
	saved := descriptors
	descriptors = map[string]Descriptor{}
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		descriptors = saved
		mu.Unlock()
	})
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), want) {
			t.Fatalf("panic %v, want one containing %q", r, want)
		}
	}()
	f()
}

func plane(name string, order int, roles ...Role) Descriptor {
	return Descriptor{Name: name, Description: "d", Family: "f", Order: order, Roles: roles}
}

func TestRegisterRejects(t *testing.T) {
	withRegistry(t)
	Register(plane("a", 1, Role{Target: "seed", Noun: "seed node", Field: "seeds", Min: 1, Default: 2}))
	cases := []struct {
		name string
		d    Descriptor
		want string
	}{
		{"duplicate", plane("a", 2), "registered twice"},
		{"bad name", plane("A b", 2), "want [a-z]"},
		{"no description", Descriptor{Name: "b", Family: "f"}, "description and family"},
		{"reserved word", plane("b", 2, Role{Target: "broker", Noun: "x"}), "not a free target word"},
		{"reserved field", plane("b", 2, Role{Target: "x", Noun: "x", Field: "brokers"}), "not free"},
		{"default below min", plane("b", 2, Role{Target: "x", Noun: "x", Field: "xs", Min: 2, Default: 1}), "default >= min"},
		{"default without field", plane("b", 2, Role{Target: "x", Noun: "x", Default: 1}), "needs a noun"},
		{"shared field disagrees", plane("b", 2, Role{Target: "seed", Noun: "seed", Field: "seeds", Default: 3}), `cluster field "seeds"`},
		{"broker without flags", Descriptor{Name: "b", Description: "d", Family: "f", Broker: &BrokerPlane{}}, "without Flags"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { mustPanic(t, c.want, func() { Register(c.d) }) })
	}
	flags := func(*flag.FlagSet) Builder { return nil }
	Register(Descriptor{Name: "p", Description: "d", Family: "f", Broker: &BrokerPlane{Infer: "seeds", Flags: flags}})
	mustPanic(t, "--seeds already selects p", func() {
		Register(Descriptor{Name: "q", Description: "d", Family: "f", Broker: &BrokerPlane{Infer: "seeds", Flags: flags}})
	})
}

func TestRegistryOrderFieldsTargets(t *testing.T) {
	withRegistry(t)
	Register(plane("zeta", 1, Role{Target: "controller", Noun: "controller", Bare: BareActive}))
	Register(plane("alpha", 5, Role{Target: "nameserver", Noun: "name server", Field: "nameservers", Plural: "name servers", Min: 1, Default: 2}))
	Register(plane("beta", 5,
		Role{Target: "nameserver", Noun: "name server", Field: "nameservers", Min: 1, Default: 2},
		Role{Target: "controller", Noun: "controller", Field: "controllers", Default: 3}))
	if got := strings.Join(Names(), ","); got != "zeta,alpha,beta" {
		t.Errorf("Names %s: want Order, then name", got)
	}
	if Rank("alpha") != 1 || Rank("nope") != 3 {
		t.Errorf("Rank alpha %d nope %d", Rank("alpha"), Rank("nope"))
	}
	fs := Fields()
	if len(fs) != 2 || fs[0] != (Field{Name: "nameservers", Plural: "name servers", Default: 2}) || fs[1] != (Field{Name: "controllers", Plural: "controllers", Default: 3}) {
		t.Errorf("Fields %+v", fs)
	}
	if got := strings.Join(Targets(), ","); got != "controller,nameserver" {
		t.Errorf("Targets %s", got)
	}
	z, _ := Lookup("zeta")
	if r, _ := z.Role("controller"); r.Indexed() {
		t.Error("a role without a field has no members to index")
	}
	b, _ := Lookup("beta")
	if r, _ := b.Role("controller"); !r.Indexed() {
		t.Error("controllers is a field: controller N names a member")
	}
}

func TestCheck(t *testing.T) {
	d := plane("ns", 1, Role{Target: "nameserver", Noun: "name server", Field: "nameservers", Plural: "name servers", Min: 1, Default: 2})
	d.Validate = func(s Shape) []Problem {
		if s.Brokers%s.Replication != 0 {
			return []Problem{{Field: "topic.replication", Msg: "not divisible"}}
		}
		return nil
	}
	ok := Shape{Brokers: 4, Replication: 2, Nodes: map[string]int{"nameservers": 1}}
	if p := d.Check(ok); len(p) != 0 {
		t.Fatalf("%+v", p)
	}
	bad := Shape{Brokers: 3, Replication: 2, Nodes: map[string]int{}}
	p := d.Check(bad)
	if len(p) != 2 || p[0].Field != "cluster.nameservers" || !strings.Contains(p[0].Msg, "at least 1 name servers") || p[1].Field != "topic.replication" {
		t.Fatalf("%+v", p)
	}
}
