// Package consumer is brokerlab's reader: it reads every partition of a topic
// from offset 0 (one goroutine and one connection per partition), follows
// the route its Discovery gives (the leader, or with name servers a slave
// while the master is gone), and records every message that carries the
// history headers as a history.Receive.
//
// Progress tells a runner when it may stop: CaughtUp(since) holds once every
// partition has been fetched by a request sent after since and has read up
// to the high watermark that request reported. A runner stops its producers,
// notes the time, and waits with WaitCaughtUp under a drain timeout.
//
// Example:
//
//	cfg := consumer.DefaultConfig()
//	cfg.Discovery, cfg.Topic = disc, "bench"
//	c, err := consumer.New(cfg)
//	go c.Run(ctx, func(r history.Receive) { record(r) })
//	stopped := time.Now() // producers done
//	err = c.WaitCaughtUp(drainCtx, stopped)
package consumer
