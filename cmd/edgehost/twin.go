package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

func newTwinCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "twin", Aliases: []string{"twins"},
		Short: "Show the device twins: each property's desired and reported value, their times and versions"}
	cmd.AddCommand(newTwinListCommand(), newTwinGetCommand())
	return cmd
}

func newTwinListCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Every device's twin, a property a line; out-of-sync properties are marked (wide: versions and times)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			list, err := flags.client().Twins(ctx)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), list)
			}
			return printTwins(cmd.OutOrStdout(), list, output.wide())
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func newTwinGetCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "get NAMESPACE/NAME",
		Short: "One device's twin, a property a line; out-of-sync properties are marked (wide: versions and times)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(args[0], "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				return usageErrorf("device %q: want NAMESPACE/NAME, e.g. default/thermo-0", args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			tw, err := flags.client().Twin(ctx, args[0])
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), tw)
			}
			return printTwins(cmd.OutOrStdout(), []api.DeviceTwin{tw}, output.wide())
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

// printTwins writes the twins as a table, a property a line; SYNC is "no"
// where the reported value lags the desired one.
func printTwins(out io.Writer, twins []api.DeviceTwin, wide bool) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	if wide {
		fmt.Fprintln(w, "DEVICE\tPROPERTY\tTYPE\tDESIRED\tDESIRED AT\tDESIRED VERSION\tREPORTED\tREPORTED AT\tREPORTED VERSION\tSYNC")
	} else {
		fmt.Fprintln(w, "DEVICE\tPROPERTY\tDESIRED\tREPORTED\tSYNC")
	}
	for _, d := range twins {
		if len(d.Properties) == 0 {
			fmt.Fprintf(w, "%s\t-\t\t\t\n", d.ID)
		}
		for _, p := range d.Properties {
			sync := "yes"
			if !p.InSync {
				sync = "no"
			}
			if wide {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, p.Name, orDash(p.Type),
					valueOrDash(p.Desired), timeOrDash(p.DesiredAt), versionOrDash(p.DesiredVersion),
					valueOrDash(p.Reported), timeOrDash(p.ReportedAt), versionOrDash(p.ReportedVersion), sync)
			} else {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.ID, p.Name, valueOrDash(p.Desired), valueOrDash(p.Reported), sync)
			}
		}
	}
	return w.Flush()
}

func valueOrDash(v *string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%q", *v)
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// versionOrDash writes a {cloud, edge} version as cloud/edge.
func versionOrDash(v *api.TwinVersion) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("cloud %d/edge %d", v.Cloud, v.Edge)
}
