package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

func newDevicesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Short: "Manage the devices the daemon reads from its devices dir"}
	var flags clientFlags
	var output string
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Re-read the devices dir without a restart (as SIGHUP does); exit 0 only when every file was read and handed over",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			rep, err := flags.client().ReloadDevices(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				printDevicesReport(out, rep)
			}
			if !rep.OK() {
				return errors.New("devices dir not fully reloaded")
			}
			return nil
		},
	}
	flags.register(reload)
	reload.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(reload)
	return cmd
}

func printDevicesReport(out io.Writer, rep api.DevicesReport) {
	fmt.Fprintf(out, "devices dir %s: %d devices, %d handed over, %d removed, %d pending\n",
		rep.Dir, rep.Devices, rep.HandedOver, rep.Removed, rep.Pending)
	if rep.Error != "" {
		fmt.Fprintf(out, "error: %s\n", rep.Error)
	}
	for _, r := range rep.Refused {
		fmt.Fprintf(out, "refused: %s\n", r)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}
