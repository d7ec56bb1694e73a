package main

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// scaffolds holds `plugin new`'s templates, a directory per language; a
// file's name without .tmpl is the name it is written under.
//
//go:embed scaffold
var scaffolds embed.FS

// scaffoldName is what a plugin name must be: the manifest's rule.
var scaffoldName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

// scaffoldData fills the templates.
type scaffoldData struct {
	// Name is the plugin's name.
	Name string
	// SDK is the edgehost source tree the project builds against, when
	// given (--sdk): a replace directive for Go, the build script's tree
	// for the others.
	SDK string
	// SDKFromDir is SDK relative to the project's directory, for the
	// languages whose imports take no absolute paths (AssemblyScript).
	SDKFromDir string
}

func scaffoldLangs() []string {
	entries, _ := fs.ReadDir(scaffolds, "scaffold") // embedded: cannot fail
	var langs []string
	for _, e := range entries {
		langs = append(langs, e.Name())
	}
	return langs
}

func newPluginNewCommand() *cobra.Command {
	var lang, dir, sdk string
	cmd := &cobra.Command{
		Use:   "new --lang " + strings.Join(scaffoldLangs(), "|") + " NAME",
		Short: "Start a plugin: a manifest, a handler, a test and a build line, which pass `edgehost plugin test` as made",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !scaffoldName.MatchString(name) {
				return fmt.Errorf("plugin new: name %q must be 1-64 of a-z 0-9 . _ - starting and ending with a letter or digit", name)
			}
			if !slices.Contains(scaffoldLangs(), lang) {
				return fmt.Errorf("plugin new: --lang %q: want one of %s", lang, strings.Join(scaffoldLangs(), ", "))
			}
			if dir == "" {
				dir = name
			}
			if sdk == "" && lang != "go" {
				return fmt.Errorf("plugin new: --lang %s needs --sdk DIR, an edgehost source tree: its SDK is not published as a package", lang)
			}
			if sdk != "" {
				abs, err := filepath.Abs(sdk)
				if err != nil {
					return fmt.Errorf("plugin new: --sdk: %w", err)
				}
				sdk = abs
			}
			data := scaffoldData{Name: name, SDK: sdk}
			if sdk != "" {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return fmt.Errorf("plugin new: --dir: %w", err)
				}
				if data.SDKFromDir, err = filepath.Rel(abs, sdk); err != nil {
					return fmt.Errorf("plugin new: --sdk: %w", err)
				}
				data.SDKFromDir = filepath.ToSlash(data.SDKFromDir)
			}
			if err := writeScaffold(lang, dir, data); err != nil {
				return fmt.Errorf("plugin new: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s (%s); see %s\n", dir, lang, filepath.Join(dir, "README.md"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&lang, "lang", "go", "the plugin's language: "+strings.Join(scaffoldLangs(), ", "))
	f.StringVar(&dir, "dir", "", "the directory to create (default NAME); it must not exist")
	f.StringVar(&sdk, "sdk", "", "an edgehost source tree to build against (its sdk/), instead of the published module")
	return cmd
}

// writeScaffold writes lang's templates into dir, which must not exist.
func writeScaffold(lang, dir string, data scaffoldData) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists; choose another --dir", dir)
	}
	root := path.Join("scaffold", lang)
	return fs.WalkDir(scaffolds, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		target := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(rel, ".tmpl")))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		text, err := fs.ReadFile(scaffolds, p)
		if err != nil {
			return err
		}
		t, err := template.New(rel).Parse(string(text))
		if err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		return os.WriteFile(target, out.Bytes(), 0o644)
	})
}
