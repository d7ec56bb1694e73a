// Command pause is the sandbox ("pause") container of the test images: it
// holds the pod's namespaces and sleeps until it is told to stop. It is
// built static (CGO_ENABLED=0) into the image internal/containerd makes.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
