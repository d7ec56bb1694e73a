package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newMetaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meta",
		Short: "Read the objects the metamanager stored from the cloud (docs/meta.md)",
	}
	cmd.AddCommand(newMetaGetCommand(), newMetaListCommand())
	return cmd
}

func newMetaGetCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "get {namespace}/{type}/{name}",
		Short: "Print one stored object (-o json: with its key and resource version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			o, err := flags.client().MetaObject(ctx, args[0])
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), o)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, o.Content, "", "  "); err != nil {
				pretty.Reset()
				pretty.Write(o.Content)
			}
			fmt.Fprintln(cmd.OutOrStdout(), pretty.String())
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func newMetaListCommand() *cobra.Command {
	var flags clientFlags
	var ns, typ string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list [--namespace NS] [--type TYPE]",
		Short: "List the stored objects, by key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			objs, err := flags.client().MetaObjects(ctx, ns, typ)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), objs)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tRESOURCE VERSION\tBYTES")
			for _, o := range objs {
				fmt.Fprintf(w, "%s\t%s\t%d\n", o.Key, o.ResourceVersion, len(o.Content))
			}
			return w.Flush()
		},
	}
	flags.register(cmd)
	output.register(cmd)
	cmd.Flags().StringVar(&ns, "namespace", "", "only this namespace (null for cluster-scoped objects)")
	cmd.Flags().StringVar(&typ, "type", "", "only this type: pod, configmap, device, ...")
	return cmd
}
