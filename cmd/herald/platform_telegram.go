package main

import (
	"log/slog"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/telegram"
)

func init() { platformConstructors = append(platformConstructors, newTelegram) }

// newTelegram builds the Telegram adapter when TELEGRAM_BOT_TOKEN is set.
func newTelegram(cfg *config.Config, state platform.StateStore, log *slog.Logger) (platform.Adapter, error) {
	t := cfg.Telegram
	if !t.Enabled() {
		return nil, nil
	}
	maxMedia := t.MaxMediaBytes
	if maxMedia == 0 {
		maxMedia = -1 // 0 in the configuration turns photos off
	}
	return telegram.New(telegram.Options{
		Token:         t.Token,
		BaseURL:       t.BaseURL,
		HomeChannel:   t.HomeChannel,
		MaxMediaBytes: maxMedia,
		State:         state,
		Logger:        log,
	})
}
