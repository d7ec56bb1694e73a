package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/cloud"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/pluginsync"
	"github.com/spf13/cobra"
)

// hubPluginFlags are the flags every `hub plugin` command takes.
type hubPluginFlags struct {
	dir, node, namespace string
	timeout              time.Duration
}

func (f *hubPluginFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	fl.StringVar(&f.node, "node", "", "the node")
	fl.StringVar(&f.namespace, "namespace", "default", "the object's namespace")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up when the node has not reported the outcome after this long")
	cmd.MarkFlagRequired("node")
}

func newHubPluginCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Install, upgrade, roll back and remove plugins on a node through the link (docs/hub.md)"}
	cmd.AddCommand(newHubPluginPushCommand(), newHubPluginRollbackCommand(), newHubPluginRemoveCommand())
	return cmd
}

func newHubPluginPushCommand() *cobra.Command {
	var f hubPluginFlags
	var disable bool
	cmd := &cobra.Command{
		Use:   "push FILE --node NODE",
		Short: "Install a plugin package on a node, or upgrade it to this package, and wait for the node's outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			pkg, err := plugins.Parse(file)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			digest, err := addPackage(ctx, f.dir, file)
			if err != nil {
				return fmt.Errorf("hub plugin push: %w", err)
			}
			spec := pluginsync.Spec{Digest: digest, Size: int64(len(file))}
			if disable {
				no := false
				spec.Enabled = &no
			}
			st, err := f.send(ctx, cmd, pkg.Manifest.Name, spec, abi.OpUpdate)
			if err != nil {
				return fmt.Errorf("hub plugin push: %w", err)
			}
			return printOutcome(cmd, f.node, st)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&disable, "disable", false, "install it disabled")
	return cmd
}

func newHubPluginRollbackCommand() *cobra.Command {
	var f hubPluginFlags
	cmd := &cobra.Command{
		Use:   "rollback NAME --node NODE",
		Short: "Put back the version a node ran before its current one (the node keeps it; nothing is transferred)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			r, err := nodeReport(ctx, f.dir, f.node)
			if err != nil {
				return fmt.Errorf("hub plugin rollback: %w", err)
			}
			last, ok := r.Plugins[args[0]]
			if !ok || last.PreviousDigest == "" {
				return fmt.Errorf("hub plugin rollback: node %s has reported no previous version of plugin %q", f.node, args[0])
			}
			st, err := f.send(ctx, cmd, args[0], pluginsync.Spec{Digest: last.PreviousDigest}, abi.OpUpdate)
			if err != nil {
				return fmt.Errorf("hub plugin rollback: %w", err)
			}
			return printOutcome(cmd, f.node, st)
		},
	}
	f.register(cmd)
	return cmd
}

func newHubPluginRemoveCommand() *cobra.Command {
	var f hubPluginFlags
	cmd := &cobra.Command{
		Use:   "remove NAME --node NODE",
		Short: "Remove a plugin from a node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			st, err := f.send(ctx, cmd, args[0], pluginsync.Spec{}, abi.OpDelete)
			if err != nil {
				return fmt.Errorf("hub plugin remove: %w", err)
			}
			return printOutcome(cmd, f.node, st)
		},
	}
	f.register(cmd)
	return cmd
}

// send sends the EdgehostPlugin object for name with spec (or its delete)
// until the node ACKs it, then waits for the status the node reports for
// it.
func (f *hubPluginFlags) send(ctx context.Context, cmd *cobra.Command, name string, spec pluginsync.Spec, op string) (pluginsync.Status, error) {
	var o pluginsync.Object
	o.APIVersion, o.Kind = "edgehost.io/v1alpha1", "EdgehostPlugin"
	o.Metadata.Name, o.Metadata.Namespace = name, f.namespace
	// Newer than any the hub sent before: the node applies a version once.
	o.Metadata.ResourceVersion = strconv.FormatInt(time.Now().UnixNano(), 10)
	o.Spec = spec
	content, _ := json.Marshal(o) // plain struct: always marshals
	msg, err := cloud.ObjectMessage(content, op)
	if err != nil {
		return pluginsync.Status{}, err
	}
	if err := sendReliable(ctx, f.dir, f.node, msg); err != nil {
		return pluginsync.Status{}, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s %s acknowledged by %s; waiting for its outcome\n", msg.Route.Operation, msg.Route.Resource, f.node)
	for {
		r, err := nodeReport(ctx, f.dir, f.node)
		if err != nil {
			return pluginsync.Status{}, err
		}
		if st, ok := r.Plugins[name]; ok && st.ResourceVersion == o.Metadata.ResourceVersion && st.State != pluginsync.StateFetching {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return pluginsync.Status{}, fmt.Errorf("node %s reported no outcome for %s: %w", f.node, msg.Route.Resource, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printOutcome prints a node's status for a plugin and fails when it says
// the node failed.
func printOutcome(cmd *cobra.Command, node string, st pluginsync.Status) error {
	if st.State == pluginsync.StateFailed {
		return fmt.Errorf("node %s: plugin %q: %s", node, st.Name, st.Error)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "node %s: plugin %s %s", node, st.Name, st.State)
	if st.State != pluginsync.StateRemoved {
		fmt.Fprintf(cmd.OutOrStdout(), ": version %s (%s), %s", st.Version, short(st.Digest), st.PluginState)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	return nil
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// addPackage hands a package to a running `hub serve` for nodes to fetch.
func addPackage(ctx context.Context, dir string, file []byte) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://hub/packages", bytes.NewReader(file))
	resp, err := hubClient(dir).Do(req)
	if err != nil {
		return "", fmt.Errorf("is `edgehost hub serve` running? %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("add package: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var out struct{ Digest string }
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("add package: %w", err)
	}
	return out.Digest, nil
}

// hubReports reads what every node reported from a running `hub serve`.
func hubReports(ctx context.Context, dir string) ([]cloud.NodeReport, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://hub/reports", nil)
	resp, err := hubClient(dir).Do(req)
	if err != nil {
		return nil, fmt.Errorf("is `edgehost hub serve` running? %w", err)
	}
	defer resp.Body.Close()
	var out []cloud.NodeReport
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return out, nil
}

// nodeReport is node's report; an empty one if it reported nothing yet.
func nodeReport(ctx context.Context, dir, node string) (cloud.NodeReport, error) {
	rs, err := hubReports(ctx, dir)
	if err != nil {
		return cloud.NodeReport{}, err
	}
	for _, r := range rs {
		if r.Node == node {
			return r, nil
		}
	}
	return cloud.NodeReport{Node: node}, nil
}

func newHubGetCommand() *cobra.Command {
	var dir, node string
	var output outputFlag
	cmd := &cobra.Command{
		Use:       "get nodes|objects|twins|plugins|status",
		Short:     "Show what nodes reported to a running `edgehost hub serve` since it started",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"nodes", "objects", "twins", "plugins", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			what := args[0]
			if !slices.Contains(cmd.ValidArgs, what) {
				return usageErrorf("hub get: %q: want nodes, objects, twins, plugins or status", what)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			rs, err := hubReports(ctx, dir)
			if err != nil {
				return fmt.Errorf("hub get: %w", err)
			}
			if node != "" {
				kept := rs[:0]
				for _, r := range rs {
					if r.Node == node {
						kept = append(kept, r)
					}
				}
				if rs = kept; len(rs) == 0 {
					return fmt.Errorf("hub get: node %s has reported nothing", node)
				}
			}
			return printReports(cmd.OutOrStdout(), what, output, rs)
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	cmd.Flags().StringVar(&node, "node", "", "only this node")
	output.register(cmd)
	return cmd
}

// printReports prints one part of the nodes' reports.
func printReports(out io.Writer, what string, output outputFlag, rs []cloud.NodeReport) error {
	if output.structured() {
		var v any = rs
		switch what {
		case "objects":
			v = byNode(rs, func(r cloud.NodeReport) any { return r.Objects })
		case "twins":
			v = byNode(rs, func(r cloud.NodeReport) any { return r.Twins })
		case "plugins":
			v = byNode(rs, func(r cloud.NodeReport) any { return r.Plugins })
		}
		return output.print(out, v)
	}
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	switch what {
	case "nodes", "status":
		fmt.Fprintln(w, "NODE\tCONNECTED\tLAST SEEN\tMESSAGES\tDEVICES\tOBJECTS\tPLUGINS")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%v\t%s\t%d\t%d\t%d\t%d\n", r.Node, r.Connected, r.LastSeen.Format(time.RFC3339), r.Messages,
				len(r.Twins), len(r.Objects), len(r.Plugins))
		}
	case "objects":
		fmt.Fprintln(w, "NODE\tRESOURCE\tOPERATION\tRESOURCE VERSION\tACKED")
		for _, r := range rs {
			for _, key := range sortedKeys(r.Objects) {
				o := r.Objects[key]
				acked := "no"
				if !o.Acked.IsZero() {
					acked = o.Acked.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Node, key, o.Operation, o.ResourceVersion, acked)
			}
		}
	case "twins":
		fmt.Fprintln(w, "NODE\tDEVICE\tTWIN")
		for _, r := range rs {
			for _, id := range sortedKeys(r.Twins) {
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Node, id, compactJSON(r.Twins[id]))
			}
		}
	case "plugins":
		fmt.Fprintln(w, "NODE\tPLUGIN\tSTATE\tVERSION\tDIGEST\tPREVIOUS\tERROR")
		for _, r := range rs {
			for _, name := range sortedKeys(r.Plugins) {
				st := r.Plugins[name]
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Node, name, st.State, st.Version, short(st.Digest), st.Previous, st.Error)
			}
		}
	}
	return w.Flush()
}

func byNode(rs []cloud.NodeReport, part func(cloud.NodeReport) any) map[string]any {
	out := map[string]any{}
	for _, r := range rs {
		out[r.Node] = part(r)
	}
	return out
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
