// Package openai is the direct backend: without a Hermes API server, Herald
// talks to an OpenAI-compatible model server (Ollama, vLLM, llama.cpp
// server, OpenAI) and sends the whole text history with every turn.
package openai

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
)

// Config configures the backend.
type Config struct {
	BaseURL        string // e.g. http://127.0.0.1:11434/v1; /chat/completions is appended
	APIKey         string
	Model          string
	SystemPrompt   string
	ConnectTimeout time.Duration
	IdleTimeout    time.Duration
	completions.Limits
	Logger *slog.Logger
}

// Backend sends turns to a model server.
type Backend struct {
	client completions.Client
	base   string
	system string
}

// New returns a backend for the model server at cfg.BaseURL.
func New(cfg Config) *Backend {
	return &Backend{
		client: completions.Client{
			Endpoint:    strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions",
			Key:         cfg.APIKey,
			Model:       cfg.Model,
			Server:      "Model server",
			HTTP:        completions.NewHTTPClient(cfg.ConnectTimeout),
			IdleTimeout: cfg.IdleTimeout,
			Limits:      cfg.Limits,
			Logger:      cfg.Logger,
		},
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		system: cfg.SystemPrompt,
	}
}

// Ping implements agent.Pinger with the model server's model list.
func (b *Backend) Ping(ctx context.Context) error {
	return b.client.Ping(ctx, b.base+"/models")
}

// Probe implements agent.Prober with the model list, which needs the key.
func (b *Backend) Probe(ctx context.Context) []agent.Probe {
	return []agent.Probe{{Endpoint: b.base + "/models", Err: b.Ping(ctx)}}
}

// Name implements agent.Backend.
func (b *Backend) Name() string { return "openai" }

// Run implements agent.Backend. The configured system prompt is the system
// message.
func (b *Backend) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	res, _ := b.client.Run(ctx, completions.Call{Turn: turn, System: b.system}, emit)
	return res
}
