// Package testutil holds the small helpers every brokerlab test uses: a
// polling Eventually instead of time.Sleep, Started for the
// new-start-close-at-cleanup of a node, and a slog.Logger that writes to the
// test's log.
//
// Example:
//
//	func TestSomething(t *testing.T) {
//		log := testutil.Logger(t, slog.LevelDebug)
//		srv := startServer(t, log)
//		testutil.Eventually(t, 5*time.Second, func() error {
//			if !srv.Ready() {
//				return errors.New("server not ready")
//			}
//			return nil
//		})
//	}
package testutil
