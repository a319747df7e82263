// Package wiring builds the gateway's parts from the configuration, for the
// commands that run a gateway (cmd/herald and the benchmarks' gateway), so
// that both are wired alike.
package wiring

import (
	"log/slog"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/agent/openai"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/stream"
)

// Backend picks the backend the configuration asks for: the Hermes API
// server when a proxy URL is set, else the model server. It returns nil when
// neither is configured; config.Load with RequireBackend reports that.
func Backend(cfg *config.Config, log *slog.Logger) agent.Backend {
	switch cfg.Backend() {
	case "hermes":
		return hermes.New(hermes.Config{
			URL:            cfg.Proxy.URL,
			Key:            cfg.Proxy.Key,
			Model:          cfg.Proxy.Model,
			ConnectTimeout: cfg.ConnectTimeout,
			IdleTimeout:    cfg.IdleTimeout,
			Logger:         log,
		})
	case "openai":
		return openai.New(openai.Config{
			BaseURL:        cfg.Agent.BaseURL,
			APIKey:         cfg.Agent.APIKey,
			Model:          cfg.Agent.Model,
			SystemPrompt:   cfg.Agent.SystemPrompt,
			ConnectTimeout: cfg.ConnectTimeout,
			IdleTimeout:    cfg.IdleTimeout,
			Logger:         log,
		})
	}
	return nil
}

// RunnerOptions are the runner's options as the configuration sets them.
func RunnerOptions(cfg *config.Config, log *slog.Logger, metrics *ops.Metrics) gateway.Options {
	return gateway.Options{
		SessionKeys:    chat.SessionKeyOptions{GroupPerUser: cfg.GroupSessionsPerUser, ThreadPerUser: cfg.ThreadSessionsPerUser},
		BusyMode:       cfg.BusyInputMode,
		Access:         Access(cfg),
		PairUnknownDMs: cfg.UnauthorizedDM == "pair",
		Streaming: stream.Options{
			Enabled:         cfg.Streaming.Enabled,
			Transport:       cfg.Streaming.Transport,
			EditInterval:    cfg.Streaming.EditInterval,
			BufferThreshold: cfg.Streaming.BufferThreshold,
			Cursor:          cfg.Streaming.Cursor,
			Logger:          log,
		},
		PlatformStreaming: cfg.PlatformStreaming,
		ShutdownGrace:     cfg.ShutdownGrace,
		Logger:            log,
		Metrics:           metrics,
	}
}

// Access maps the configured allowlists onto the runner's.
func Access(cfg *config.Config) gateway.Access {
	a := gateway.Access{
		All:       gateway.Allowlist{AllowAll: cfg.Access.AllowAll, Users: cfg.Access.Users},
		Platforms: map[string]gateway.Allowlist{},
	}
	for name, p := range cfg.PlatformAccess {
		if p.AllowAll || len(p.Users) > 0 {
			a.Platforms[name] = gateway.Allowlist{AllowAll: p.AllowAll, Users: p.Users}
		}
	}
	return a
}
