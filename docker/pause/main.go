// Command pause holds a container's network namespace, like Kubernetes'
// pod sandbox: it does nothing until SIGTERM or SIGINT. The docker runtime
// runs every node's brokerlab process in the namespace of its own pause
// container, so that a killed node keeps its address and its kernel keeps
// answering (a connection to a dead broker's port is refused at once, as on
// a live host whose broker process crashed), and a restart comes back on
// the same address. It lives in the brokerlab image next to the binary.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
