package main

import (
	"context"
	"errors"
	"io"

	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/producer"
)

func init() {
	extraCommands = append(extraCommands,
		command{"produce", "write an open-loop message stream to a topic and print latency figures", usageExit(producer.RunCLI, producer.ErrUsage)},
		command{"consume", "read a topic from a Kafka-protocol cluster (bootstrap or name servers)", usageExit(consumer.RunCLI, consumer.ErrUsage)},
	)
}

// usageExit maps a package's usage error to the CLI's exit status 2.
func usageExit(run func(context.Context, []string, io.Writer, io.Writer) error, usage error) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		err := run(ctx, args, stdout, stderr)
		if errors.Is(err, usage) {
			return errors.Join(errUsage, err)
		}
		return err
	}
}
