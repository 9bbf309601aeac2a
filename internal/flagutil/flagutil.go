// Package flagutil holds flag.Value types the packages' AddFlags methods
// share.
//
//	fs.Var((*flagutil.List)(&cfg.Peers), "peers", "comma-separated addresses")
package flagutil

import "strings"

// List is a comma-separated list flag; spaces around items and empty items
// are dropped, and each Set replaces the list.
type List []string

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *List) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}
