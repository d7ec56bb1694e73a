package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/daemon"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

func newRunCommand() *cobra.Command {
	var configPath, dataDir, devicesDir, logLevel, logFormat string
	var resetStore bool
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [--data-dir DIR]",
		Short: "Run the daemon until SIGINT or SIGTERM; SIGHUP re-reads the config (log level) and the devices dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			configPath = runConfigPath(configPath, defaultConfigPath)
			// load reads the config and applies the flags, at start and
			// again on SIGHUP.
			load := func() (*config.Config, error) {
				cfg, err := loadConfig(cmd.InOrStdin(), configPath)
				if err != nil {
					return nil, err
				}
				return cfg, applyRunFlags(cfg, dataDir, devicesDir, logLevel, logFormat)
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			var reload func() (*config.Config, error)
			if configPath != "" && configPath != "-" {
				reload = load
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
			if err := daemon.Run(ctx, cfg, daemon.Options{Version: version, ResetStore: resetStore, Reload: reload}, log); err != nil {
				return fmt.Errorf("run: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", `config file ("-" reads stdin; default: `+defaultConfigPath+` when it exists, else built-in defaults)`)
	f.StringVar(&dataDir, "data-dir", "", "data directory (overrides dataDir in the config)")
	f.StringVar(&devicesDir, "devices-dir", "", "directory of KubeEdge Device YAML files (overrides modules.devices.dir)")
	f.StringVar(&logLevel, "log-level", "", "log level: trace, debug, info, warn, error (overrides the config)")
	f.StringVar(&logFormat, "log-format", "", "log format: text or json (overrides the config)")
	f.BoolVar(&resetStore, "reset-store", false, "if the store is damaged or missing, set it aside (renamed with a timestamp) and start an empty one; a healthy store is kept")
	return cmd
}

// applyRunFlags applies run's flags over the config and validates it.
func applyRunFlags(cfg *config.Config, dataDir, devicesDir, logLevel, logFormat string) error {
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
	return cfg.Validate()
}

// defaultConfigPath is the config `edgehost run` reads when no --config
// is given and the file exists: where `make install` and the .deb put it.
const defaultConfigPath = "/etc/edgehost/edgehost.yaml"

// runConfigPath is the config file run reads: flag when given, else
// defaultPath when it exists, else "" (the built-in defaults).
func runConfigPath(flag, defaultPath string) string {
	if flag != "" {
		return flag
	}
	if _, err := os.Stat(defaultPath); err == nil {
		return defaultPath
	}
	return ""
}

func configPathOrDefault(p string) string {
	if p == "" {
		return "<defaults>"
	}
	return p
}
