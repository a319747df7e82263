package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/config"
)

func newEnvCmd(opts *options) *cobra.Command {
	var asJSON, asMarkdown bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "List every environment variable Herald reads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case asJSON:
				enc := json.NewEncoder(opts.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(config.Registry())
			case asMarkdown:
				return writeMarkdown(opts.stdout)
			}
			tw := tabwriter.NewWriter(opts.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCATEGORY\tSECRET\tADVANCED\tDESCRIPTION")
			for _, v := range config.Registry() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.Category, yesNo(v.Secret), yesNo(v.Advanced), v.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	cmd.Flags().BoolVar(&asMarkdown, "markdown", false, "print the README's tables of variables and config.yaml keys")
	cmd.MarkFlagsMutuallyExclusive("json", "markdown")
	return cmd
}

// writeMarkdown writes the README's three tables: every environment
// variable, then the config.yaml keys that no variable sets, each in the
// order `herald check` lists them; then Hermes's gateway settings and
// Herald's own, each marked with what Herald makes of it.
func writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| variable | category | secret | what it sets |\n|---|---|---|---|\n")
	for _, s := range config.All() {
		if s.Env != "" {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Env, s.Category, yesNo(s.Secret), cell(s.Description, append([]string{s.Key}, s.AltKeys...), s.Default))
		}
	}
	b.WriteString("\n| key | default | meaning |\n|---|---|---|\n")
	for _, s := range config.All() {
		if s.Env == "" {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Key, code(s.Default), cell(s.Description, s.AltKeys, ""))
		}
	}
	b.WriteString("\nHermes's gateway settings, and Herald's own, each marked with what Herald makes of it:\n\n")
	b.WriteString("| setting | in Herald | Hermes's default | why |\n|---|---|---|---|\n")
	for _, c := range config.HermesSettings() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, c.Mark, code(c.Default), strings.ReplaceAll(c.Why, "|", `\|`))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell is a setting's description for a table cell, with its config.yaml
// keys and default when it has them.
func cell(description string, keys []string, def string) string {
	var extra []string
	for _, key := range keys {
		if key != "" {
			extra = append(extra, code(key))
		}
	}
	if def != "" {
		extra = append(extra, "default "+code(def))
	}
	text := description
	if len(extra) > 0 {
		text += " (" + strings.Join(extra, ", ") + ")"
	}
	return strings.ReplaceAll(text, "|", `\|`)
}

// code shows a value as inline code, its spaces visible.
func code(v string) string {
	if v == "" {
		return ""
	}
	if strings.TrimSpace(v) != v {
		return "`\"" + v + "\"`"
	}
	return "`" + v + "`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
