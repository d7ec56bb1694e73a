package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgehost/edgehost/host/plugins"
	"github.com/spf13/cobra"
)

// opTimeout bounds a plugin operation on the daemon: an install compiles
// the module, which can take a few seconds on a small box.
const opTimeout = 2 * time.Minute

func newPluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Package, sign, install and manage wasm plugins (docs/plugins.md)",
	}
	cmd.AddCommand(newPluginPackCommand(), newPluginKeygenCommand(), newPluginSignCommand())
	for _, upgrade := range []bool{false, true} {
		cmd.AddCommand(newPluginUploadCommand(upgrade))
	}
	cmd.AddCommand(newPluginListCommand(), newPluginInfoCommand(), newPluginLogsCommand(), newPluginRemoveCommand(),
		newPluginReloadCommand(), newPluginTestCommand(), newPluginNewCommand())
	for _, action := range []string{"rollback", "enable", "disable"} {
		cmd.AddCommand(newPluginActionCommand(action))
	}
	return cmd
}

func newPluginPackCommand() *cobra.Command {
	var manifest, module, out string
	cmd := &cobra.Command{
		Use:   "pack --manifest m.json --module p.wasm -o p.wasm",
		Short: "Make a plugin package: the module with the manifest in its edgehost.manifest section",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			man, err := os.ReadFile(manifest)
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			mod, err := os.ReadFile(module)
			if err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			pkg, err := plugins.Pack(mod, man)
			if err != nil {
				return fmt.Errorf("pack %s: %w", manifest, err)
			}
			if err := os.WriteFile(out, pkg, 0o644); err != nil {
				return fmt.Errorf("pack: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "packed %s (%d bytes, unsigned)\n", out, len(pkg))
			return nil
		},
	}
	cmd.Flags().StringVar(&manifest, "manifest", "", "manifest JSON file (required)")
	cmd.Flags().StringVar(&module, "module", "", "wasm module (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "package file to write (required)")
	for _, f := range []string{"manifest", "module", "output"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newPluginKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out NAME",
		Short: "Make an ed25519 signing key pair: NAME.key (private, 0600) and NAME.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := plugins.GenerateKey(out+".key", out+".pub")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s.key and %s.pub\nfingerprint %s\npublicKey %s\n",
				out, out, plugins.Fingerprint(pub), strings.TrimSpace(mustRead(out+".pub")))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "plugin-signing", "path prefix of the key files")
	return cmd
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func newPluginSignCommand() *cobra.Command {
	var key, out string
	cmd := &cobra.Command{
		Use:   "sign --key NAME.key FILE",
		Short: "Sign a plugin package (in place unless -o is given); re-signing replaces the signature",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// keygen writes NAME.key and NAME.pub; a public key is 32 bytes,
			// which would read as a private key's seed and sign with a key
			// nobody holds.
			if strings.HasSuffix(key, ".pub") {
				return usageErrorf("sign: %s is a public key; sign with the .key", key)
			}
			priv, err := plugins.ReadPrivateKey(key)
			if err != nil {
				return err
			}
			file, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			signed, err := plugins.Sign(file, priv)
			if err != nil {
				return fmt.Errorf("sign %s: %w", args[0], err)
			}
			if out == "" {
				out = args[0]
			}
			if err := os.WriteFile(out, signed, 0o644); err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file from `edgehost plugin keygen` (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the signed package here instead of in place")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newPluginUploadCommand(upgrade bool) *cobra.Command {
	var flags clientFlags
	use, short := "install FILE", "Install a plugin package on the running daemon"
	if upgrade {
		use, short = "upgrade FILE", "Replace an installed plugin's version without downtime (the old one stays for rollback)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
			defer cancel()
			info, err := flags.client().InstallPlugin(ctx, file, upgrade)
			if err != nil {
				return err
			}
			verb := "installed"
			if upgrade {
				verb = "upgraded"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s (%s, signer %s, compile %.1f ms)\n", verb, info.Name, info.Version,
				info.State, orNone(info.Signer), info.CompileMS)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newPluginListCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the daemon's plugins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			list, err := flags.client().Plugins(ctx)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), list)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tORIGIN\tSTATE\tSIGNER\tPREVIOUS\tCALLS\tDENIED\tLAST ERROR")
			for _, p := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Name, p.Version, p.Origin, p.State,
					p.Signer, p.Previous, p.Calls, p.Denied, firstOf(p.LastError, p.LastFault))
			}
			return w.Flush()
		},
	}
	flags.register(cmd)
	output.register(cmd)
	return cmd
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newPluginInfoCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Show one plugin in full (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			info, err := flags.client().Plugin(ctx, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
	flags.register(cmd)
	return cmd
}

func newPluginActionCommand(action string) *cobra.Command {
	var flags clientFlags
	short := map[string]string{
		"rollback": "Put an installed plugin's previous version back in service",
		"enable":   "Enable an installed plugin (kept across restarts)",
		"disable":  "Disable an installed plugin (kept across restarts)",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
			defer cancel()
			info, err := flags.client().PluginAction(ctx, args[0], action)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: version %s, %s\n", action, info.Name, info.Version, info.State)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newPluginRemoveCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an installed plugin and its versions (its KV data stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
			defer cancel()
			if err := flags.client().RemovePlugin(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newPluginLogsCommand() *cobra.Command {
	var flags clientFlags
	var output outputFlag
	var n int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a plugin's recent log lines (info and above)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			lines, err := flags.client().PluginLogs(ctx, args[0], n)
			if err != nil {
				return err
			}
			if output.structured() {
				return output.print(cmd.OutOrStdout(), lines)
			}
			for _, l := range lines {
				fmt.Fprintf(cmd.OutOrStdout(), "%s [%s] %s\n", l.Time.Format(time.RFC3339Nano), strings.ToUpper(l.Level), l.Message)
			}
			return nil
		},
	}
	flags.register(cmd)
	output.register(cmd)
	cmd.Flags().IntVarP(&n, "lines", "n", 100, "how many lines, from the end (0: all kept)")
	return cmd
}
