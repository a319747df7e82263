package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/app/apptest"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/syncbuf"
)

// echo answers every message with what it was sent and where from.
type echo struct{}

func (echo) Name() string { return "echo" }
func (echo) Run(_ context.Context, turn agent.Turn, _ func(agent.Event)) agent.Result {
	text := "from " + turn.Source.Platform + ": " + turn.Message
	return agent.Result{FinalResponse: text, Text: text}
}

// In one process every account runs beside the main bot, each answering
// its own chats under its own name, with the platform's allowlist; a
// turn left by an account no longer configured is named at start.
func TestAccountsInOneProcess(t *testing.T) {
	main := telegramtest.NewServer(telegramtest.Options{Token: "100000001:AAEmainBotTokenForHeraldAppTests"})
	t.Cleanup(main.Close)
	more := telegramtest.NewServer(telegramtest.Options{Token: "100000002:AAEsupportBotTokenForHeraldAppTests", BotUsername: "support_bot"})
	t.Cleanup(more.Close)
	api := telegramtest.Together(main, more)
	t.Cleanup(api.Close) // after the gateway stops (cleanups run last first)
	alice := telegramtest.User{ID: 7001, FirstName: "Alice"}
	private := telegramtest.Chat{ID: alice.ID, Type: telegramtest.Private, FirstName: alice.FirstName}
	cfg := configtest.MustLoad(t, "", map[string]string{
		"HERALD_HTTP_ADDR": "127.0.0.1:0", "WEBCHAT_ENABLED": "false",
		"TELEGRAM_BOT_TOKEN": main.Token, "TELEGRAM_BASE_URL": api.URL, "TELEGRAM_ACCOUNTS": "support=" + more.Token,
		"TELEGRAM_ALLOWED_USERS": "7001",
	})
	// A turn journalled for an account that is gone since.
	st, err := sqlite.Open(t.Context(), filepath.Join(cfg.Home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(t.Context(), "telegram-gone:dm:7001", chat.Inbound{
		Source: chat.Source{Platform: "telegram-gone", ChatID: "7001", ChatType: chat.DM, UserID: "7001"}, EventID: "gone-1", Text: "hello?",
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var logged syncbuf.Buffer
	a, err := app.Build(t.Context(), cfg, app.Options{Backend: echo{}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Run(t, a)
	main.Inject(telegramtest.Incoming{Chat: private, From: alice, Text: "to the main bot"})
	more.Inject(telegramtest.Incoming{Chat: private, From: alice, Text: "to support"})
	more.Inject(telegramtest.Incoming{Chat: private, From: telegramtest.User{ID: 7002, FirstName: "Eve"}, Text: "not allowed"})
	answer := func(s *telegramtest.Server) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, m := range s.Messages(private.ID) {
				if m.FromBot {
					return m.Text
				}
			}
		}
		return ""
	}
	if got := answer(main); got != "from telegram: to the main bot" {
		t.Errorf("the main bot answered %q", got)
	}
	if got := answer(more); got != "from telegram-support: to support" {
		t.Errorf("the support bot answered %q", got)
	}
	resp, err := http.Get("http://" + a.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"telegram-support":"connected"`) {
		t.Errorf("/readyz: %s %s", resp.Status, body)
	}
	var answers []string
	for _, m := range more.Messages(private.ID) {
		if m.FromBot {
			answers = append(answers, m.Text)
		}
	}
	if len(answers) != 1 {
		t.Errorf("the support bot answered %q: Eve is not in the allowlist", answers)
	}
	if !strings.Contains(logged.String(), `unfinished turns of a platform that is not enabled are left journalled" platform=telegram-gone turns=1`) {
		t.Errorf("the turn of the account gone was not named:\n%s", logged.String())
	}
}
