package flagutil

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	l := List{"default"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&l, "peers", "")
	if err := fs.Parse([]string{"--peers", " a:1, ,b:2 ,"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l, List{"a:1", "b:2"}) || l.String() != "a:1,b:2" {
		t.Fatalf("got %q (%s)", l, l.String())
	}
	var nilList *List
	if nilList.String() != "" {
		t.Fatal("a nil list prints as empty")
	}
}
