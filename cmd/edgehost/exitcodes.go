package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

// Exit statuses, the same for every command (docs/cli.md).
const (
	exitOK = 0
	// exitRuntime: the command failed on this side: a file it could not
	// read, a daemon it could not reach.
	exitRuntime = 1
	// exitUsage: the command line was wrong (unknown command or flag, a
	// missing or bad argument, an -o value no command takes).
	exitUsage = 2
	// exitRemote: the daemon (or hub) answered, with a failure: not
	// ready, an error status from the admin API, a host failure of a
	// message.
	exitRemote = 3
)

// usageError marks an error of the command line.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// usageErrorf is usageError of a formatted error.
func usageErrorf(format string, args ...any) error { return usageError(fmt.Errorf(format, args...)) }

// exitCode is the exit status for err, as returned by Execute.
func exitCode(err error) int {
	var exit *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit):
		return exit.code
	case strings.HasPrefix(err.Error(), "unknown command "):
		// Cobra's own, from finding the command: there is no hook to type it.
		return exitUsage
	case api.IsRemote(err):
		return exitRemote
	}
	return exitRuntime
}

// verbose is the -v flag: errors in full rather than on one line.
var verbose bool

var lineBreaks = regexp.MustCompile(`\s*\n\s*`)

// oneLine is err's text on one line, its line breaks (errors.Join's lists,
// multi-line validation errors) turned into "; ".
func oneLine(err error) string {
	return lineBreaks.ReplaceAllString(strings.TrimSpace(err.Error()), "; ")
}

// enforceUsageExit makes every error of the command line under root exit
// with exitUsage: bad flags, bad arguments, missing required flags and
// unknown subcommands of the command groups.
func enforceUsageExit(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	// Cobra checks required flags after the pre-run hooks; checking them
	// here first is the only way to give its error the usage status.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := cmd.ValidateRequiredFlags(); err != nil {
			return usageError(err)
		}
		if err := cmd.ValidateFlagGroups(); err != nil {
			return usageError(err)
		}
		return nil
	}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if args := cmd.Args; args != nil {
			cmd.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return usageError(err)
				}
				return nil
			}
		}
		if cmd != root && !cmd.Runnable() && cmd.HasSubCommands() {
			// A group: cobra would print its help and exit 0 for any
			// argument, a mistyped subcommand too.
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(c *cobra.Command, a []string) error {
				if len(a) > 0 {
					return usageErrorf("unknown command %q for %q", a[0], c.CommandPath())
				}
				return c.Help()
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
