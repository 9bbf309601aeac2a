package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// Clean-up: a run's services, containers, network and volumes by label.

// removeRun removes the services labelled with run, waits until their
// containers are gone, then removes the run's network and volumes.
func removeRun(ctx context.Context, client *dc.Client, eng *engine, run string) error {
	var errs []error
	sel := labelRun + "=" + run
	svcs, err := eng.services(ctx, "label", sel)
	if err != nil && !errors.Is(err, errNoSwarm) {
		errs = append(errs, err)
	}
	for _, s := range svcs {
		if err := eng.removeService(ctx, s.ID); err != nil && !errors.Is(err, errNotFound) {
			errs = append(errs, err)
		}
	}
	// Task containers go away shortly after their service; the network and
	// volumes can only be removed then. Containers left in an odd state
	// (paused, or a service removed while the engine was busy) are removed
	// by force.
	_ = pollUntil(ctx, 100*time.Millisecond, func() error {
		cts, err := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {sel}}})
		if err != nil {
			return err
		}
		for _, ct := range cts {
			if strings.Contains(ct.Status, "Paused") {
				_ = client.UnpauseContainer(ct.ID)
			}
			if ct.State != "running" && ct.State != "paused" {
				_ = client.RemoveContainer(dc.RemoveContainerOptions{ID: ct.ID, Force: true})
			}
		}
		if len(cts) > 0 {
			return fmt.Errorf("%d containers left", len(cts))
		}
		return nil
	})
	cts, _ := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {sel}}})
	for _, ct := range cts {
		if err := client.RemoveContainer(dc.RemoveContainerOptions{ID: ct.ID, Force: true}); err != nil {
			errs = append(errs, err)
		}
	}
	nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {sel: true}})
	if err != nil {
		errs = append(errs, err)
	}
	for _, nw := range nws {
		err := pollUntil(ctx, 200*time.Millisecond, func() error { return client.RemoveNetwork(nw.ID) })
		if err != nil {
			errs = append(errs, fmt.Errorf("swarm: remove network %s: %w", nw.Name, err))
		}
	}
	vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {sel}}})
	if err != nil {
		errs = append(errs, err)
	}
	for _, v := range vols {
		err := pollUntil(ctx, 200*time.Millisecond, func() error {
			return client.RemoveVolumeWithOptions(dc.RemoveVolumeOptions{Context: ctx, Name: v.Name})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("swarm: remove volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// sweep removes what runs of dead owners on this host left behind: their
// services, networks and volumes. Runs of live processes are left alone.
func sweep(ctx context.Context, client *dc.Client, eng *engine, logger *slog.Logger) {
	runs := map[string]bool{}
	dead := func(labels map[string]string) {
		if run := labels[labelRun]; run != "" && deadOwner(labels[labelOwner]) {
			runs[run] = true
		}
	}
	if svcs, err := eng.services(ctx, "label", labelRun); err == nil {
		for _, s := range svcs {
			dead(s.Spec.Labels)
		}
	}
	if nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelRun: true}}); err == nil {
		for _, nw := range nws {
			dead(nw.Labels)
		}
	}
	if vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {labelRun}}}); err == nil {
		for _, v := range vols {
			dead(v.Labels)
		}
	}
	for _, run := range slices.Sorted(mapsKeys(runs)) {
		logger.Info("removing leftovers of a dead run", "run", run)
		if err := removeRun(ctx, client, eng, run); err != nil {
			logger.Warn("leftovers not all removed", "run", run, "error", err)
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pollUntil calls f every interval until it succeeds or ctx ends.
func pollUntil(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
