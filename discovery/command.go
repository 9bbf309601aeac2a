package discovery

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Command is the command-line frame `brokerlab produce` and `brokerlab
// consume` share: usage text, the discovery flags, --log-level, and how bad
// flags are reported.
type Command struct {
	// Name is the subcommand ("produce").
	Name string
	// Usage are the lines printed above the flag defaults.
	Usage []string
	// ErrUsage is wrapped by every error about the flags.
	ErrUsage error
	// Discovery are the discovery flags, set by Open.
	Discovery FlagConfig

	logLevel string
}

// Open parses args with the command's own flags (bound by add) besides
// the shared ones, runs check, and opens the discovery the flags select; the
// caller closes it. A bad flag, a positional argument, bad discovery flags
// or a failed check return an error wrapping ErrUsage after the details
// went to stderr; -h returns flag.ErrHelp. The logger is the one
// --log-level asks for, writing to stderr.
func (c *Command) Open(args []string, stderr io.Writer, add func(fs *flag.FlagSet), check func() error) (*slog.Logger, Discovery, error) {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		for _, l := range c.Usage {
			fmt.Fprintln(stderr, l)
		}
		fs.PrintDefaults()
	}
	c.Discovery.AddFlags(fs)
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	add(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", c.ErrUsage, err)
	}
	err := c.Discovery.Validate()
	if fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err == nil {
		err = check()
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil, fmt.Errorf("%w: %w", c.ErrUsage, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%w: bad log level %q", c.ErrUsage, c.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	d, err := c.Discovery.Open(nil, log)
	return log, d, err
}
