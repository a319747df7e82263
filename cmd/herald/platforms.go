package main

import (
	"log/slog"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

// platformConstructor builds one platform's adapter from the configuration,
// or returns nil when that platform is not configured. Each platform's file
// in this package registers one in init.
type platformConstructor func(cfg *config.Config, state platform.StateStore, log *slog.Logger) (platform.Adapter, error)

var platformConstructors []platformConstructor

// configuredPlatforms builds the adapters of every configured platform
// (the web chat is wired separately: it shares the HTTP listener).
func configuredPlatforms(cfg *config.Config, state platform.StateStore, log *slog.Logger) ([]platform.Adapter, error) {
	var adapters []platform.Adapter
	for _, build := range platformConstructors {
		a, err := build(cfg, state, log)
		if err != nil {
			return nil, err
		}
		if a != nil {
			adapters = append(adapters, a)
		}
	}
	return adapters, nil
}
