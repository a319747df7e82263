package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/homelock"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
)

// Diagnose checks what a gateway configured by cfg depends on, for herald
// doctor: its state directory, its store, the agent server and each
// enabled platform. It changes nothing a running gateway uses, so it may
// run beside one.
func Diagnose(ctx context.Context, cfg *config.Config) []platform.Finding {
	findings := diagnoseHome(cfg.Home)
	st, f := diagnoseStore(ctx, cfg)
	findings = append(findings, f)
	if st != nil {
		defer st.Close()
	}
	findings = append(findings, diagnoseAgent(ctx, cfg)...)
	return append(findings, diagnosePlatforms(ctx, cfg, st)...)
}

// diagnoseHome checks that HERALD_HOME can be written and says whether a
// gateway holds it.
func diagnoseHome(home string) []platform.Finding {
	const check = "HERALD_HOME"
	// A HERALD_HOME that is not a directory fails config.Load already.
	_, err := os.Stat(home)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []platform.Finding{{Status: platform.OK, Check: check,
			Detail: home + " does not exist yet; herald run creates it"}}
	case err != nil:
		return []platform.Finding{{Status: platform.Fail, Check: check, Detail: err.Error(),
			Fix: "make HERALD_HOME a directory the user running Herald can read and write"}}
	}
	f, err := os.CreateTemp(home, ".doctor-*")
	if err != nil {
		return []platform.Finding{{Status: platform.Fail, Check: check, Detail: "cannot be written: " + err.Error(),
			Fix: "give the user running Herald write access to " + home + ", or set HERALD_HOME to a directory it owns"}}
	}
	f.Close()
	os.Remove(f.Name())
	findings := []platform.Finding{{Status: platform.OK, Check: check, Detail: home + " is writable"}}
	switch who, held, err := homelock.Holder(home); {
	case err != nil:
		findings = append(findings, platform.Finding{Status: platform.Warn, Check: "HERALD_HOME lock",
			Detail: "cannot be checked: " + err.Error(), Fix: "check the permissions of " + filepath.Join(home, homelock.FileName)})
	case held:
		findings = append(findings, platform.Finding{Status: platform.OK, Check: "HERALD_HOME lock",
			Detail: "held by a running Herald (" + who + "); a second herald run on it would be refused"})
	default:
		findings = append(findings, platform.Finding{Status: platform.OK, Check: "HERALD_HOME lock",
			Detail: "free: no Herald runs on it"})
	}
	return findings
}

// diagnoseStore opens the store as herald run would: the store, or nil
// when it cannot be opened (the finding says why).
func diagnoseStore(ctx context.Context, cfg *config.Config) (store.Store, platform.Finding) {
	const check = "store"
	if cfg.Database.URL == "" {
		if _, err := os.Stat(cfg.Home); err != nil {
			return nil, platform.Finding{Status: platform.OK, Check: check, Detail: "SQLite; created at the first start"}
		}
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		fix := "free space on the disk of HERALD_HOME, or move a damaged state.db away (Herald starts a new one)"
		if cfg.Database.URL != "" {
			fix = "start PostgreSQL, or correct HERALD_DATABASE_URL (database.url)"
		}
		return nil, platform.Finding{Status: platform.Fail, Check: check, Detail: err.Error(), Fix: fix}
	}
	detail := "SQLite at " + filepath.Join(cfg.Home, "state.db")
	if cfg.Database.URL != "" {
		detail = "PostgreSQL"
		if u, err := url.Parse(cfg.Database.URL); err == nil {
			detail += " at " + u.Redacted()
		}
	}
	return st, platform.Finding{Status: platform.OK, Check: check, Detail: detail + " opens"}
}

// diagnoseAgent asks the agent server the endpoints its backend names, and
// says which setting to correct when one fails.
func diagnoseAgent(ctx context.Context, cfg *config.Config) []platform.Finding {
	urlVar, keyVar, key := "GATEWAY_PROXY_URL", "GATEWAY_PROXY_KEY", cfg.Proxy.Key
	if cfg.Backend() == "openai" {
		urlVar, keyVar, key = "HERALD_AGENT_BASE_URL", "HERALD_AGENT_API_KEY", cfg.Agent.APIKey
	}
	p, ok := NewBackend(cfg, slog.New(slog.DiscardHandler)).(agent.Prober)
	if !ok {
		return nil
	}
	var findings []platform.Finding
	for _, probe := range p.Probe(ctx) {
		f := platform.Finding{Status: platform.OK, Check: "agent server: GET " + redactedURL(probe.Endpoint), Detail: "answers"}
		var status *agent.StatusError
		switch {
		case probe.Err == nil:
		case errors.As(probe.Err, &status) && (status.Status == 401 || status.Status == 403):
			f.Status, f.Detail = platform.Fail, fmt.Sprintf("the key was refused (%d %s)", status.Status, status.Message)
			f.Fix = "set " + keyVar + " to the key the agent server expects (API_SERVER_KEY on a Hermes API server)"
			if key == "" {
				f.Detail = fmt.Sprintf("a key is required (%d), and %s is not set", status.Status, keyVar)
			}
		case errors.As(probe.Err, &status) && status.Status == 404:
			f.Status, f.Detail = platform.Fail, "not found (404): this is not the server "+urlVar+" should name"
			f.Fix = "point " + urlVar + " at the agent's API server (a Hermes API server listens on port 8642 by default)"
		case errors.As(probe.Err, &status):
			f.Status, f.Detail = platform.Fail, probe.Err.Error()
			f.Fix = "read the agent server's log: it is up but failing"
		default:
			f.Status, f.Detail = platform.Fail, "cannot be reached: "+probe.Err.Error()
			f.Fix = "start the agent server (for Hermes: API_SERVER_ENABLED=true), or correct " + urlVar
		}
		findings = append(findings, f)
	}
	return findings
}

// diagnosePlatforms builds each enabled platform's adapter (and each
// further account's), without connecting it, and asks it to check its
// side.
func diagnosePlatforms(ctx context.Context, cfg *config.Config, st store.Store) []platform.Finding {
	var findings []platform.Finding
	enabled := map[string]platform.Settings{}
	for name, settings := range cfg.Platforms {
		if settings := settings.(platform.Settings); settings.Enabled() {
			enabled[name] = settings
		}
	}
	for _, acct := range accountsOf(cfg) {
		enabled[acct.name] = acct.settings
	}
	for _, name := range slices.Sorted(maps.Keys(enabled)) {
		settings := enabled[name]
		deps := platform.Deps{
			Dir:      filepath.Join(cfg.Home, name),
			HTTPAddr: cfg.HTTPAddr,
			Database: cfg.Database.URL,
			Logger:   slog.New(slog.DiscardHandler),
		}
		if st != nil {
			deps.State = st
		}
		adapter, err := settings.Adapter(deps)
		if err != nil {
			findings = append(findings, platform.Finding{Status: platform.Fail, Check: name, Detail: err.Error(),
				Fix: "correct the setting the message names"})
			continue
		}
		d, ok := adapter.(platform.Diagnoser)
		if !ok {
			findings = append(findings, platform.Finding{Status: platform.OK, Check: name, Detail: "enabled; nothing to check on a platform's side"})
			continue
		}
		findings = append(findings, d.Diagnose(ctx)...)
	}
	return findings
}

// redactedURL is u with any password masked.
func redactedURL(u string) string {
	if parsed, err := url.Parse(u); err == nil {
		return parsed.Redacted()
	}
	return u
}
