package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/daemon"
	"github.com/edgehost/edgehost/host/store"
	"github.com/spf13/cobra"
)

// storeFlags find the data dir of the store commands: --data-dir, else
// the dataDir of --config, else $EDGEHOST_DATA_DIR, else the default.
type storeFlags struct {
	clientFlags
	config string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	f.clientFlags.register(cmd)
	cmd.Flags().StringVar(&f.config, "config", "", "the daemon's config file, for its dataDir")
}

func (f *storeFlags) resolveDataDir() (string, error) {
	switch {
	case f.dataDir != "":
		return filepath.Abs(f.dataDir)
	case f.config != "":
		cfg, err := config.Load(f.config)
		if err != nil {
			return "", err
		}
		f.dataDir = cfg.DataDir
		if f.admin == "" {
			f.admin = cfg.Modules.API.Socket
		}
		return cfg.DataDir, nil
	case os.Getenv("EDGEHOST_DATA_DIR") != "":
		return filepath.Abs(os.Getenv("EDGEHOST_DATA_DIR"))
	}
	return config.DefaultDataDir, nil
}

func newStoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Check, back up and restore the daemon's store file (docs/store.md)",
	}
	cmd.AddCommand(newStoreCheckCommand(), newStoreBackupCommand(), newStoreRestoreCommand(), newStoreSnapshotsCommand())
	return cmd
}

// checkResult is `edgehost store check -o json`.
type checkResult struct {
	Path      string   `json:"path"`
	OK        bool     `json:"ok"`
	Bytes     int64    `json:"bytes,omitempty"`
	Buckets   int      `json:"buckets,omitempty"`
	Keys      int      `json:"keys,omitempty"`
	ElapsedMS int64    `json:"elapsed_ms"`
	Complete  bool     `json:"complete"`
	Damage    string   `json:"damage,omitempty"`
	Problems  []string `json:"problems,omitempty"`
}

func newStoreCheckCommand() *cobra.Command {
	var flags storeFlags
	var file string
	var output outputFlag
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check [--data-dir DIR | --config FILE | --file FILE]",
		Short: "Verify a stopped daemon's store file (or a snapshot or backup); exit 0 only when it is sound",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := file
			if path == "" {
				dir, err := flags.resolveDataDir()
				if err != nil {
					return err
				}
				path = daemon.StorePath(dir)
			}
			rep, err := store.Check(path, timeout)
			var damage *store.DamageError
			if err != nil && !errors.As(err, &damage) {
				if errors.Is(err, store.ErrLocked) {
					return fmt.Errorf("%w: the daemon checked it at start and reports read failures in `edgehost status`; to check it now, `edgehost store backup FILE` and `edgehost store check --file FILE`", err)
				}
				return err
			}
			res := checkResult{Path: path, OK: err == nil, Bytes: rep.Bytes, Buckets: rep.Buckets, Keys: rep.Keys,
				ElapsedMS: rep.Elapsed.Milliseconds(), Complete: rep.Complete}
			if damage != nil {
				res.Damage, res.Problems = damage.Damage, damage.Problems
			}
			out := cmd.OutOrStdout()
			if output.structured() {
				if err := output.print(out, res); err != nil {
					return err
				}
			} else if damage == nil {
				note := ""
				if !rep.Complete {
					note = fmt.Sprintf(" (stopped at the %s time limit: not every page was checked)", timeout)
				}
				fmt.Fprintf(out, "%s: ok, %d bytes, %d buckets, %d keys, checked in %d ms%s\n", path, rep.Bytes, rep.Buckets, rep.Keys, rep.Elapsed.Milliseconds(), note)
			} else {
				for _, p := range damage.Problems {
					fmt.Fprintf(out, "%s: %s\n", path, p)
				}
			}
			return err
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "check this file instead of the data dir's store (a snapshot or a backup)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop checking after this long (0: check every page)")
	output.register(cmd)
	return cmd
}

func newStoreBackupCommand() *cobra.Command {
	var flags storeFlags
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a verified copy of the store to FILE: through the running daemon, or from the file when it is stopped",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := flags.resolveDataDir()
			if err != nil {
				return err
			}
			flags.dataDir = dir
			dst := args[0]
			ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
			defer cancel()
			var n int64
			how := "from the running daemon"
			err = store.WriteBackupFile(dst, func(w io.Writer) error {
				var err error
				n, err = flags.client().BackupStore(ctx, w)
				return err
			})
			if noDaemon(err) {
				how = "from the stopped daemon's file"
				n, err = store.BackupFile(daemon.StorePath(dir), dst)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes, checked) %s\n", dst, n, how)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

// noDaemon reports whether err says nothing listens on the admin socket.
func noDaemon(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED))
}

func newStoreRestoreCommand() *cobra.Command {
	var flags storeFlags
	cmd := &cobra.Command{
		Use:   "restore [SNAPSHOT]",
		Short: "Replace the stopped daemon's store with SNAPSHOT, default the newest snapshot that passes the check; the current file is kept aside",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := flags.resolveDataDir()
			if err != nil {
				return err
			}
			from := ""
			if len(args) == 1 {
				if from, err = filepath.Abs(args[0]); err != nil {
					return err
				}
			}
			res, err := store.Restore(daemon.StorePath(dir), daemon.SnapshotDir(dir), from)
			out := cmd.OutOrStdout()
			for _, s := range res.Skipped {
				fmt.Fprintf(out, "skipped %s\n", s)
			}
			if err != nil {
				return err
			}
			if res.Aside != "" {
				fmt.Fprintf(out, "kept the previous file as %s\n", res.Aside)
			}
			fmt.Fprintf(out, "restored %s from %s\n", daemon.StorePath(dir), res.From)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newStoreSnapshotsCommand() *cobra.Command {
	var flags storeFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List the store's snapshots, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := flags.resolveDataDir()
			if err != nil {
				return err
			}
			snaps, err := store.ListSnapshots(daemon.SnapshotDir(dir))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.structured() {
				type row struct {
					Path  string    `json:"path"`
					Time  time.Time `json:"time"`
					Bytes int64     `json:"bytes"`
				}
				rows := []row{}
				for _, s := range snaps {
					rows = append(rows, row{s.Path, s.Time, s.Bytes})
				}
				return output.print(out, rows)
			}
			for _, s := range snaps {
				fmt.Fprintf(out, "%s  %s  %d bytes\n", s.Time.Format(time.RFC3339), s.Path, s.Bytes)
			}
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}
