package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/edgecoreimport"
	"github.com/spf13/cobra"
)

func newImportEdgecoreCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "import-edgecore EDGECORE.yaml [--out edgehost.yaml]",
		Short: "Write the edgehost.yaml equivalent to an edgecore.yaml, naming every key it could not carry over",
		Long: "Reads a KubeEdge edgecore.yaml (v1alpha2) and writes the edgehost config that does what it did: the cloud link\n" +
			"(server, token, node name, project id), the eventbus mode and broker addresses, the DMI socket, the\n" +
			"metamanager. Every key not carried over is listed on stderr and at the top of the file, with why.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("import-edgecore: %w", err)
			}
			res, err := edgecoreimport.Import(data, args[0])
			if err != nil {
				return fmt.Errorf("import-edgecore: %w", err)
			}
			body, err := config.Marshal(res.Config)
			if err != nil {
				return err
			}
			var doc bytes.Buffer
			fmt.Fprintf(&doc, "# Imported from %s by edgehost import-edgecore (docs/migration.md).\n", args[0])
			fmt.Fprintf(&doc, "# %d keys carried over; %d not, or with a change:\n", len(res.Carried), len(res.LeftOut))
			for _, l := range res.LeftOut {
				fmt.Fprintf(&doc, "#   %s\n", l)
				fmt.Fprintf(cmd.ErrOrStderr(), "left out: %s\n", l)
			}
			doc.Write(body)
			if out == "" {
				_, err = cmd.OutOrStdout().Write(doc.Bytes())
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("import-edgecore: %w", err)
			}
			if _, err := f.Write(doc.Bytes()); err != nil {
				f.Close()
				return fmt.Errorf("import-edgecore: write %s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("import-edgecore: write %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the config to this new file (mode 0600) instead of stdout")
	return cmd
}
