package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPodCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pod",
		Short: "See the pods the container runtime runs (docs/runtime.md)",
	}
	cmd.AddCommand(newPodListCommand(), newPodLogsCommand())
	return cmd
}

func newPodListCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pods with the status last sent to the cloud, as kubectl get pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			pods, err := flags.client().Pods(ctx)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), pods)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tIP")
			for _, p := range pods {
				status := p.Phase
				if p.Reason != "" {
					status = p.Reason
				}
				fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%d\t%s\n", p.Namespace, p.Name, p.Ready, p.Containers, status, p.Restarts, p.PodIP)
			}
			return w.Flush()
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func newPodLogsCommand() *cobra.Command {
	var flags clientFlags
	var container string
	var previous bool
	cmd := &cobra.Command{
		Use:   "logs NAMESPACE/NAME [-c CONTAINER] [-p]",
		Short: "Print a container's log (its current run, or the previous one with -p)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(args[0], "/")
			if !ok || ns == "" || name == "" {
				return fmt.Errorf("pod %q: want NAMESPACE/NAME", args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			return flags.client().PodLog(ctx, ns, name, container, previous, cmd.OutOrStdout())
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&container, "container", "c", "", "the container (needed when the pod has more than one)")
	cmd.Flags().BoolVarP(&previous, "previous", "p", false, "the run before the current one")
	return cmd
}
