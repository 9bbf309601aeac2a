// Command buildimage builds brokerlab's container image from the working
// tree: the static binary (CGO_ENABLED=0) into docker/build/, then the image
// of docker/Dockerfile, tagged brokerlab:<binary hash> and brokerlab:local.
// An unchanged binary reuses the image built before.
//
//	go run ./docker/buildimage
//
// docker/compose.yaml runs brokerlab:local.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/brokerlab/brokerlab/docker/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: go run ./docker/buildimage (no arguments; DOCKER_HOST picks the engine)")
		os.Exit(2)
	}
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "buildimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	pool, err := image.Connect(ctx)
	if err != nil {
		return fmt.Errorf("no Docker engine answers at %s: %w", image.Endpoint(), err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	img, err := image.Build(ctx, pool, image.Options{Logger: logger})
	if err != nil {
		return err
	}
	verb := "reused"
	if img.Built {
		verb = "built"
	}
	fmt.Printf("%s %s (also tagged %s:%s) from %s\n", verb, img.Ref(), image.Repository, image.LocalTag, img.Binary)
	return nil
}
