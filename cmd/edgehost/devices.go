package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

func newDevicesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Aliases: []string{"device"},
		Short: "List the daemon's devices and the mappers serving them, and re-read the devices dir"}
	reload := newReloadCommand("Re-read the devices dir without a restart (as SIGHUP does); exit 0 only when every file was read and handed over",
		time.Minute, (*api.Client).ReloadDevices, printDevicesReport, "devices dir not fully reloaded")
	cmd.AddCommand(reload, newDevicesListCommand(), newDevicesGetCommand())
	return cmd
}

func newDevicesListCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the devices, their state and the wasm mapper serving each (none: unbound)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			list, err := flags.client().ListDevices(ctx)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), list)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEVICE\tPROTOCOL\tMAPPER\tSTATE\tPROPERTIES\tREADS\tWRITES\tERRORS\tMISSED\tLAST ERROR")
			for _, d := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", d.ID, d.Protocol, orDash(d.Mapper), d.State,
					d.Properties, d.Reads, d.Writes, errorTotal(d.Errors), d.Missed, d.LastError)
			}
			return w.Flush()
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func newDevicesGetCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "get NAMESPACE/NAME",
		Short: "Show one device: its mapper, state, errors and each property's last value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(args[0], "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				return fmt.Errorf("device %q: want NAMESPACE/NAME, e.g. default/thermo-0", args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			d, err := flags.client().GetDevice(ctx, args[0])
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), d)
			}
			printDevice(cmd.OutOrStdout(), d)
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func printDevice(out io.Writer, d api.DeviceDetail) {
	fmt.Fprintf(out, "device %s (%s): protocol %s, mapper %s, %s\n", d.ID, d.Source, d.Protocol, orDash(d.Mapper), d.State)
	fmt.Fprintf(out, "reads %d, writes %d, missed cycles %d\n", d.Reads, d.Writes, d.Missed)
	for _, k := range slices.Sorted(maps.Keys(d.Errors)) {
		fmt.Fprintf(out, "errors %s: %d\n", k, d.Errors[k])
	}
	if d.LastError != "" {
		fmt.Fprintf(out, "last error (%s): %s\n", d.LastErrorAt.Format(time.RFC3339), d.LastError)
	}
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROPERTY\tTYPE\tVALUE\tREAD AT\tREPORTED\tWRITTEN\tCOLLECT\tREPORT\tMISSED\tERROR")
	for _, p := range d.PropertyList {
		readAt := "-"
		if !p.ReadAt.IsZero() {
			readAt = p.ReadAt.Format("15:04:05.000")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Type, orDash(p.Value), readAt, orDash(p.Reported),
			orDash(p.Written), time.Duration(p.CollectCycleMS)*time.Millisecond, time.Duration(p.ReportCycleMS)*time.Millisecond, p.Missed, p.Error)
	}
	w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errorTotal(errs map[string]uint64) uint64 {
	var n uint64
	for _, v := range errs {
		n += v
	}
	return n
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
