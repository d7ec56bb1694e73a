// Command edgehost is the edge daemon and its command-line tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "edgehost:", oneLine(err))
		os.Exit(exitCode(err))
	}
}

// exitError is an error that ends the command with its own exit status
// (exitcodes.go) rather than the one exitCode gives it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
