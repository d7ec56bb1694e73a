package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/edgehost/edgehost/host/daemon"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

func newRunCommand() *cobra.Command {
	var configPath, dataDir, devicesDir, logLevel, logFormat string
	var resetStore bool
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [--data-dir DIR]",
		Short: "Run the daemon until SIGINT or SIGTERM; SIGHUP re-reads the devices dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.InOrStdin(), configPath)
			if err != nil {
				return err
			}
			if dataDir != "" {
				abs, err := filepath.Abs(dataDir)
				if err != nil {
					return fmt.Errorf("--data-dir: %w", err)
				}
				cfg.SetDataDir(abs)
			}
			if devicesDir != "" {
				abs, err := filepath.Abs(devicesDir)
				if err != nil {
					return fmt.Errorf("--devices-dir: %w", err)
				}
				cfg.Modules.Devices.Dir = abs
			}
			if logLevel != "" {
				cfg.Log.Level = logLevel
			}
			if logFormat != "" {
				cfg.Log.Format = logFormat
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := hclog.New(&hclog.LoggerOptions{
				Name:       "edgehost",
				Level:      hclog.LevelFromString(cfg.Log.Level),
				JSONFormat: cfg.Log.Format == "json",
				Output:     os.Stderr,
			})
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("starting", "version", version, "config", configPathOrDefault(configPath))
			if err := daemon.Run(ctx, cfg, daemon.Options{Version: version, ResetStore: resetStore}, log); err != nil {
				return fmt.Errorf("run: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", `config file ("-" reads stdin; default: built-in defaults)`)
	f.StringVar(&dataDir, "data-dir", "", "data directory (overrides dataDir in the config)")
	f.StringVar(&devicesDir, "devices-dir", "", "directory of KubeEdge Device YAML files (overrides modules.devices.dir)")
	f.StringVar(&logLevel, "log-level", "", "log level: trace, debug, info, warn, error (overrides the config)")
	f.StringVar(&logFormat, "log-format", "", "log format: text or json (overrides the config)")
	f.BoolVar(&resetStore, "reset-store", false, "if the store is damaged or missing, set it aside (renamed with a timestamp) and start an empty one; a healthy store is kept")
	return cmd
}

func configPathOrDefault(p string) string {
	if p == "" {
		return "<defaults>"
	}
	return p
}
