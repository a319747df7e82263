package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

func newDoctorCmd(opts *options) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what the gateway depends on (settings, HERALD_HOME, the agent server, each platform's login) and say what to fix",
		Long: "Check what the gateway depends on and print a checklist: each line OK, WARN or FAIL, with the fix in one sentence.\n" +
			"It only reads, so it may run beside a running gateway. The exit status is 1 when a check fails.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			findings := diagnose(cmd, opts)
			if asJSON {
				enc := json.NewEncoder(opts.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(findings); err != nil {
					return err
				}
			} else if err := printFindings(opts, findings); err != nil {
				return err
			}
			failed := 0
			for _, f := range findings {
				if f.Status == platform.Fail {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d checks failed", failed, len(findings))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checklist as JSON, for scripts")
	return cmd
}

// diagnose is the checklist: the configuration first; the rest only when
// it loads.
func diagnose(cmd *cobra.Command, opts *options) []platform.Finding {
	cfg, err := config.Load(config.Options{File: opts.configFile, RequireBackend: true})
	if err != nil {
		return []platform.Finding{{Status: platform.Fail, Check: "configuration", Detail: err.Error(),
			Fix: "correct what the message names; herald check prints every effective setting"}}
	}
	findings := []platform.Finding{{Status: platform.OK, Check: "configuration", Detail: "valid (" + cfg.File + ", and the environment)"}}
	for _, w := range cfg.Warnings {
		findings = append(findings, platform.Finding{Status: platform.Warn, Check: "configuration", Detail: w,
			Fix: "correct or remove the key: Herald does not read it"})
	}
	return append(findings, app.Diagnose(cmd.Context(), cfg)...)
}

// printFindings prints one line per finding, its check aligned, and the
// fix under each that has one.
func printFindings(opts *options, findings []platform.Finding) error {
	width := 0
	for _, f := range findings {
		width = max(width, len(f.Check))
	}
	var b strings.Builder
	for _, f := range findings {
		detail := strings.ReplaceAll(f.Detail, "\n", "\n"+strings.Repeat(" ", width+8))
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", f.Status, width, f.Check, detail)
		if f.Fix != "" {
			fmt.Fprintf(&b, "      %-*s  fix: %s\n", width, "", f.Fix)
		}
	}
	_, err := fmt.Fprint(opts.stdout, b.String())
	return err
}
