package main

import (
	"fmt"
	"io"

	"github.com/edgehost/edgehost/host/config"
	"github.com/spf13/cobra"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Print or check edgehost.yaml"}
	cmd.AddCommand(newImportEdgecoreCommand())
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the full default configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := config.Marshal(config.Default())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: `Check a configuration file ("-" reads stdin); exit 0 when it is valid`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := loadConfig(cmd.InOrStdin(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), args[0]+": ok")
			return nil
		},
	})
	return cmd
}

// loadConfig reads the config at path, "-" for stdin, or the defaults when
// path is empty.
func loadConfig(stdin io.Reader, path string) (*config.Config, error) {
	switch path {
	case "":
		return config.Default(), nil
	case "-":
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read config from stdin: %w", err)
		}
		return config.Parse(data, "<stdin>")
	}
	return config.Load(path)
}
