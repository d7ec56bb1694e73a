package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// The build's identity, stamped by the Makefile with -ldflags "-X
// main.version=... -X main.commit=... -X main.buildDate=...". A plain `go
// build` leaves the defaults.
var (
	version   = "dev"
	commit    = "unknown"
	buildDate = "unknown"
)

// versionInfo is what `edgehost version -o json` prints.
type versionInfo struct {
	Version   string `json:"version" yaml:"version"`
	Commit    string `json:"commit" yaml:"commit"`
	BuildDate string `json:"build_date" yaml:"build_date"`
	Go        string `json:"go" yaml:"go"`
}

func currentVersion() versionInfo {
	return versionInfo{Version: version, Commit: commit, BuildDate: buildDate, Go: runtime.Version()}
}

// versionLine is the one-line form `edgehost version` and `edgehost
// --version` print.
func versionLine() string {
	v := currentVersion()
	return fmt.Sprintf("edgehost %s (commit %s, built %s, %s)", v.Version, v.Commit, v.BuildDate, v.Go)
}

func newVersionCommand() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "version [-o table|wide|json|yaml]",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if output.structured() {
				return output.print(out, currentVersion())
			}
			fmt.Fprintln(out, versionLine())
			return nil
		},
	}
	output.register(cmd)
	return cmd
}
