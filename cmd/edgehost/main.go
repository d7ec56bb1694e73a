// Command edgehost is the edge daemon and its command-line tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	cmd, err := newRootCommand().ExecuteC()
	if err == nil {
		return
	}
	code := exitCode(err)
	if !verbose {
		fmt.Fprintln(os.Stderr, "edgehost:", oneLine(err))
		os.Exit(code)
	}
	// -v: the error as it is, over several lines when it has several
	// parts, and the command's usage after a usage error.
	fmt.Fprintln(os.Stderr, "edgehost:", err)
	if code == exitUsage {
		fmt.Fprint(os.Stderr, "\n"+cmd.UsageString())
	}
	os.Exit(code)
}

// exitError is an error that ends the command with its own exit status
// (exitcodes.go) rather than the one exitCode gives it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
