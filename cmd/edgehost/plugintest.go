package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/conformance"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/spf13/cobra"
)

func newPluginTestCommand() *cobra.Command {
	var configFile string
	var output outputFlag
	var route abi.Route
	var calls int
	var limits wasm.Limits
	var pages int
	cmd := &cobra.Command{
		Use:   "test FILE",
		Short: "Run a plugin package (or bare module) through the ABI's rules in the real runtime and report what to fix",
		Long: "Runs the plugin in the same runtime the daemon uses, with an in-memory KV and no receivers for its\n" +
			"sends: package and manifest, exports and imports, grants, initial memory, init, messages of every\n" +
			"size and odd content, memory over many calls, concurrent instances, ticks and stop. Exits 1 if a\n" +
			"check fails.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("plugin test: %w", err)
			}
			opts := conformance.Options{Message: route, Calls: calls, Limits: limits}
			opts.Limits.MemoryPages = uint32(pages)
			if configFile != "" {
				if opts.Config, err = os.ReadFile(configFile); err != nil {
					return fmt.Errorf("plugin test: --config: %w", err)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, file, opts)
			if err != nil {
				return fmt.Errorf("plugin test: %w", err)
			}
			if output.structured() {
				if err := output.print(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printConformance(cmd, args[0], rep)
			}
			if !rep.Passed() {
				return fmt.Errorf("plugin test: %s fails the ABI's rules", args[0])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "config bytes for edgehost_init (default: the manifest's config)")
	f.StringVar(&route.Source, "source", "conformance", "route source of the messages sent")
	f.StringVar(&route.Group, "group", "user", "route group of the messages sent")
	f.StringVar(&route.Operation, "operation", abi.OpQuery, "route operation of the messages sent")
	f.StringVar(&route.Resource, "resource", "conformance/ping", "route resource of the messages sent")
	f.IntVar(&calls, "calls", 2000, "messages the memory check sends")
	f.IntVar(&pages, "memory-pages", 256, "the memory limit, in 64 KiB pages")
	f.DurationVar(&limits.CallTimeout, "call-timeout", time.Second, "the per-call timeout")
	f.IntVar(&limits.MaxMessageBytes, "max-message-bytes", 1<<20, "the max message size")
	f.IntVar(&limits.Instances, "instances", 2, "the number of instances")
	output.register(cmd)
	return cmd
}

func printConformance(cmd *cobra.Command, file string, rep *conformance.Report) {
	out := cmd.OutOrStdout()
	name := rep.Plugin
	if rep.Version != "" {
		name += " " + rep.Version
	}
	fmt.Fprintf(out, "%s: plugin %s, %d bytes, %d initial pages\n", file, name, rep.ModuleBytes, rep.Pages)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Result, c.Name, c.Detail)
		if c.Hint != "" && (c.Result == conformance.Fail || c.Result == conformance.Warn) {
			fmt.Fprintf(w, "\t\t→ %s\n", c.Hint)
		}
	}
	w.Flush()
	if rep.Passed() {
		fmt.Fprintln(out, "PASS")
	} else {
		fmt.Fprintln(out, "FAIL")
	}
}
