package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

func newPluginReloadCommand() *cobra.Command {
	return newReloadCommand("Re-read the plugin dir and the trust store without a restart (as SIGHUP does); exit 0 only when every file was taken",
		opTimeout, (*api.Client).ReloadPlugins, printPluginsReport, "plugin dir or trust store not fully reloaded")
}

func printPluginsReport(out io.Writer, rep api.PluginsReport) {
	fmt.Fprintf(out, "plugin dir %s: %d plugins, %d loaded, %d upgraded, %d removed, %d unchanged\n",
		rep.Dir, rep.Plugins, len(rep.Loaded), len(rep.Upgraded), len(rep.Removed), rep.Unchanged)
	for _, l := range []struct {
		what  string
		names []string
	}{{"loaded", rep.Loaded}, {"upgraded", rep.Upgraded}, {"removed", rep.Removed}} {
		if len(l.names) > 0 {
			fmt.Fprintf(out, "%s: %s\n", l.what, strings.Join(l.names, ", "))
		}
	}
	for _, r := range rep.Refused {
		fmt.Fprintf(out, "refused: %s\n", r)
	}
	switch t := rep.Trust; {
	case t != nil:
		fmt.Fprintf(out, "trust store: %d keys (%d added, %d removed), %d revoked, policy local %s, remote %s\n",
			t.Keys, len(t.Added), len(t.Removed), t.Revoked, t.PolicyLocal, t.PolicyRemote)
	case rep.Error == "":
		fmt.Fprintln(out, "trust store: not re-read (the daemon runs without a config file)")
	}
	if rep.Error != "" {
		fmt.Fprintf(out, "error: %s\n", rep.Error)
	}
}
