package main

import (
	"os"
	"path/filepath"

	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

// clientFlags are the flags of commands that talk to a running daemon.
type clientFlags struct {
	admin   string
	dataDir string
	token   string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.admin, "admin", "", "admin API address: a unix socket path or an http:// URL (default <data-dir>/admin.sock)")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "the daemon's data dir, to find its admin socket (default from $EDGEHOST_DATA_DIR, else /var/lib/edgehost)")
	cmd.Flags().StringVar(&f.token, "token", os.Getenv("EDGEHOST_TOKEN"), "bearer token for the TCP admin listener (default $EDGEHOST_TOKEN)")
}

func (f *clientFlags) client() *api.Client {
	addr := f.admin
	if addr == "" {
		dir := f.dataDir
		if dir == "" {
			dir = os.Getenv("EDGEHOST_DATA_DIR")
		}
		if dir == "" {
			dir = "/var/lib/edgehost"
		}
		addr = filepath.Join(dir, "admin.sock")
	}
	return api.NewClient(addr, f.token)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "edgehost",
		Short:         "edgehost is an edge daemon whose device drivers, routes and twin logic are wasm plugins",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false,
		"print an error in full (over several lines when it has several parts) and the usage after a usage error")
	root.AddCommand(newRunCommand(), newVersionCommand(), newConfigCommand(), newStatusCommand(), newSendCommand(), newPluginCommand(),
		newStoreCommand(), newDevicesCommand(), newTwinCommand(), newMetaCommand(), newHubCommand(), newPodCommand(), newImageCommand())
	enforceUsageExit(root)
	return root
}
