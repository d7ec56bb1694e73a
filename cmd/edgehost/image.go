package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Bring container images to the node's runtime without a registry (docs/runtime.md)",
	}
	cmd.AddCommand(newImageImportCommand())
	return cmd
}

func newImageImportCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "import FILE.tar...",
		Short: "Import image archives (OCI image layout or docker-archive tars) into the container runtime",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var all []api.Image
			for _, file := range args {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				imgs, err := flags.client().ImportImage(ctx, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("import %s: %w", file, err)
				}
				all = append(all, imgs...)
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), api.ImageList{Images: all})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tID\tSIZE")
			for _, img := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\n", img.Name, img.ID, mib(int64(img.Size)))
			}
			return w.Flush()
		},
	}
	flags.register(cmd)
	output.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long the imports may take in all")
	return cmd
}
