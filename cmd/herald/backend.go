package main

import (
	"log/slog"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/agent/openai"
	"github.com/herald-chat/herald/internal/config"
)

// newBackend picks the backend the configuration asks for: the Hermes API
// server when a proxy URL is set, else the model server. It returns nil when
// neither is configured; config.Load with RequireBackend reports that.
func newBackend(cfg *config.Config, log *slog.Logger) agent.Backend {
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
