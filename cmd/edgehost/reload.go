package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

// reloadReport is what a reload endpoint answers: OK when everything was
// taken.
type reloadReport interface{ OK() bool }

// newReloadCommand is a `reload` subcommand: it asks the daemon to reload
// (fetch), prints the report (as a table with printTable, or -o json/yaml)
// and exits 3 with notAll when the report is not OK.
func newReloadCommand[R reloadReport](short string, timeout time.Duration, fetch func(*api.Client, context.Context) (R, error),
	printTable func(io.Writer, R), notAll string) *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "reload",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := fetch(flags.client(), ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.structured() {
				if err := output.print(out, rep); err != nil {
					return err
				}
			} else {
				printTable(out, rep)
			}
			if !rep.OK() {
				return &exitError{code: exitRemote, err: errors.New(notAll)}
			}
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}
