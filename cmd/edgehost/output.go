package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// The -o values every listing command takes (docs/cli.md).
const (
	outputTable = "table"
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

var outputFormats = []string{outputTable, outputWide, outputJSON, outputYAML}

// outputFlag is a listing command's -o flag: table (the default), wide
// (the table with every column), json or yaml. Any other value is refused
// while the flags are parsed, so the command exits 2 (usage) before doing
// anything.
type outputFlag struct{ format string }

// String implements pflag.Value.
func (o *outputFlag) String() string {
	if o.format == "" {
		return outputTable
	}
	return o.format
}

// Set implements pflag.Value. "text", the old name of the table, is still
// taken.
func (o *outputFlag) Set(v string) error {
	if v == "text" {
		v = outputTable
	}
	if !slices.Contains(outputFormats, v) {
		return fmt.Errorf("%q is not an output format: want %s", v, strings.Join(outputFormats, ", "))
	}
	o.format = v
	return nil
}

// Type implements pflag.Value.
func (o *outputFlag) Type() string { return "format" }

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.Flags().VarP(o, "output", "o", "output format: "+strings.Join(outputFormats, ", "))
}

// structured says whether the output is a document (json or yaml) rather
// than a table.
func (o *outputFlag) structured() bool { return o.format == outputJSON || o.format == outputYAML }

// wide says whether the table should have every column.
func (o *outputFlag) wide() bool { return o.format == outputWide }

// print writes v as JSON or YAML, with the field names of its JSON form in
// both.
func (o *outputFlag) print(out io.Writer, v any) error {
	if o.format == outputYAML {
		return printYAML(out, v)
	}
	return printJSON(out, v)
}

// printYAML writes v as YAML with its JSON field names and their order: v
// is encoded as JSON, which is YAML, read back as a node tree and written
// in block style.
func printYAML(out io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("encode output as yaml: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode output as yaml: %w", err)
	}
	_, err = out.Write(buf.Bytes())
	return err
}

// blockStyle clears the flow and quoting styles the JSON text gave n, so
// that the encoder picks YAML's own (quoting only what needs it).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
