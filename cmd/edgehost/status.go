package main

import (
	"context"
	"errors"
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

func newStatusCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's state; exit 0 only when it is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := flags.client().Status(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.structured() {
				if err := output.print(out, st); err != nil {
					return err
				}
			} else {
				printStatus(out, st, output.wide())
			}
			if !st.Ready {
				if len(st.NotReady) > 0 {
					return &exitError{code: exitRemote, err: fmt.Errorf("daemon is not ready: %s", strings.Join(st.NotReady, "; "))}
				}
				return &exitError{code: exitRemote, err: errors.New("daemon is not ready")}
			}
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

// printStatus prints st as tables; wide adds the bus's per-module counters.
func printStatus(out io.Writer, st api.Status, wide bool) {
	state := "ready"
	if !st.Ready {
		state = "NOT READY"
	}
	fmt.Fprintf(out, "edgehost %s: %s, up %s\n", st.Version, state, time.Since(st.StartedAt).Round(time.Second))
	for _, why := range st.NotReady {
		fmt.Fprintf(out, "  not ready: %s\n", why)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MODULE\tSTATE\tRESTARTS\tLAST ERROR")
	for _, m := range st.Modules {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", m.Name, m.State, m.Restarts, m.LastError)
	}
	w.Flush()
	if p := st.Pods; p != nil {
		fmt.Fprintf(out, "\npods: %d%s\n", p.Total, phases(p.Phases))
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PLUGIN\tVERSION\tSTATE\tINSTANCES\tMEMORY\tMODULE\tCALLS\tFAULTS\tLAST FAULT")
	for _, p := range st.Plugins {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Name, p.Version, p.State, p.Instances,
			mib(int64(p.MemoryPages)<<16), mib(int64(p.ModuleBytes)), p.Calls, p.Faults, p.LastFault)
	}
	w.Flush()
	if eb := st.EventBus; eb != nil {
		printEventBus(out, eb)
	}
	if wide {
		fmt.Fprintln(out)
		w = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "BUS MODULE\tGROUP\tSENT\tRECEIVED\tFAILED\tQUEUED")
		for _, b := range st.Bus {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", b.Name, b.Group, b.Sent, b.Received, b.Failed, b.QueueDepth)
		}
		w.Flush()
	}
}

// phases is " (Failed 1, Running 2)", by phase name; "" for none.
func phases(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, phase := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", phase, m[phase]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// printEventBus prints the eventbus's subscriber queues and, when there
// were any, the MQTT clients' drops.
func printEventBus(out io.Writer, eb *api.EventBusStatus) {
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MQTT SUBSCRIBER\tFILTER\tDELIVERED\tDROPPED\tREFUSED\tQUEUED")
	for _, s := range eb.Subscribers {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", s.Subscriber, s.Filter, s.Delivered, s.Dropped, s.Refused, s.QueueDepth)
	}
	w.Flush()
	if eb.ClientInflightDropped+eb.ClientWritesDropped > 0 {
		fmt.Fprintf(out, "  mqtt clients: %d messages dropped at the in-flight limit, %d at the pending-writes limit\n",
			eb.ClientInflightDropped, eb.ClientWritesDropped)
	}
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
