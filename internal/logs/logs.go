// Package logs holds what every node does with the *slog.Logger its
// configuration injects.
//
//	log := logs.OrDiscard(cfg.Logger) // nil: log nothing
package logs

import "log/slog"

// OrDiscard returns l, or a logger that discards every record when l is
// nil (a configuration that left its Logger unset).
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
