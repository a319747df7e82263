package app

import (
	"maps"

	"github.com/herald-chat/herald/internal/config"
)

// Reload gives the running gateway the settings of cfg it can take without
// a restart (config.Setting.Reload: the allowlists, pairing, busy input,
// session resets and how answers are shown), keeping its connections. It
// returns the settings that changed from the configuration the gateway
// started with: those applied, and those that wait for a restart. Only
// names are logged, never values.
func (a *App) Reload(cfg *config.Config) (applied, restart []string) {
	started := map[string]string{}
	for _, e := range a.cfg.Effective() {
		started[e.Key] = e.Value
	}
	for _, e := range cfg.Effective() {
		switch {
		case started[e.Key] == e.Value:
		case e.Reload:
			applied = append(applied, e.Key)
		default:
			restart = append(restart, e.Key)
		}
	}
	if !maps.Equal(a.cfg.PlatformStreaming, cfg.PlatformStreaming) {
		applied = append(applied, "display.platforms.*.streaming")
	}
	if !maps.Equal(a.cfg.PlatformToolProgress, cfg.PlatformToolProgress) {
		applied = append(applied, "display.platforms.*.tool_progress")
	}
	next := runnerOptions(cfg, a.log, a.Metrics)
	next.Tracing = a.runnerOpts().Tracing
	a.runnerOptions.Store(&next)
	a.Runner.Reload(next)
	for _, acct := range a.accountsHeld() {
		acct.runner.Reload(next)
	}
	if len(applied) > 0 {
		a.log.Info("reloaded the configuration", "applied", applied)
	} else {
		a.log.Info("reloaded the configuration: no setting a running gateway takes changed")
	}
	if len(restart) > 0 {
		a.log.Warn("changed settings that take effect at the next restart", "settings", restart)
	}
	return applied, restart
}
