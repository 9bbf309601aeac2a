package logs

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

func TestOrDiscard(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	if got := OrDiscard(l); got != l {
		t.Fatal("a set logger was replaced")
	}
	d := OrDiscard(nil)
	if d == nil || d.Enabled(context.Background(), slog.LevelError) {
		t.Fatalf("nil gave %v, want a logger that discards", d)
	}
}
