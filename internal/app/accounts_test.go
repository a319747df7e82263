package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/syncbuf"
)

func TestShare(t *testing.T) {
	for _, c := range []struct {
		units, mine int
		others      []int
		release     int
		take        bool
	}{
		{units: 4, mine: 0, others: nil, take: true},                         // alone: all of them
		{units: 4, mine: 4, others: nil, take: false},                        // alone, holding all
		{units: 4, mine: 4, others: []int{0}, release: 2},                    // a second joins
		{units: 4, mine: 0, others: []int{4}, take: true},                    // the one that joined
		{units: 4, mine: 2, others: []int{2}, take: false},                   // even
		{units: 4, mine: 2, others: []int{2, 0}, release: 1},                 // a third joins: give one up
		{units: 4, mine: 0, others: []int{2, 2}, take: true},                 // the third
		{units: 4, mine: 1, others: []int{1, 1}, take: true},                 // one left free: anyone may
		{units: 4, mine: 1, others: []int{2, 0}, take: false},                // leave it for the one with none
		{units: 4, mine: 2, others: []int{1, 1}, take: false},                // at most its share
		{units: 1, mine: 0, others: []int{1}, take: true},                    // one lease: the other would take it, were it free
		{units: 1, mine: 1, others: []int{0, 0}, take: false},                // and is not given up for it
		{units: 5, mine: 3, others: []int{2}, take: false},                   // uneven, at its most
		{units: 3, mine: 0, others: []int{1, 1, 1}, take: true},              // more replicas than units: a free one, if any
		{units: 2, mine: 2, others: []int{0, 0, 0}, release: 1, take: false}, // over its most
	} {
		release, take := share(c.units, c.mine, c.others)
		if release != c.release || take != c.take {
			t.Errorf("share(%d units, mine %d, others %v) = give up %d, take %v; want %d, %v",
				c.units, c.mine, c.others, release, take, c.release, c.take)
		}
	}
}

// Replicas that each decide by share alone, one at a time, end with the
// units spread evenly and stay there: as a replica joins, and as one
// leaves (its units lapse).
func TestShareSettles(t *testing.T) {
	const units = 4
	settle := func(held []int) []int {
		t.Helper()
		for range 100 {
			moved := false
			for i := range held {
				others := slices.Delete(slices.Clone(held), i, i+1)
				release, take := share(units, held[i], others)
				free := units
				for _, n := range held {
					free -= n
				}
				switch {
				case release > 0:
					held[i] -= release
					moved = true
				case take && free > 0:
					held[i]++
					moved = true
				}
			}
			if !moved {
				return held
			}
		}
		t.Fatalf("the replicas never settle: %v", held)
		return nil
	}
	held := settle([]int{0})
	if fmt.Sprint(held) != "[4]" {
		t.Errorf("alone: %v", held)
	}
	if held = settle(append(held, 0)); fmt.Sprint(held) != "[2 2]" {
		t.Errorf("two replicas: %v", held)
	}
	held = settle(append(held, 0))
	slices.Sort(held)
	if fmt.Sprint(held) != "[1 1 2]" {
		t.Errorf("three replicas: %v", held)
	}
	if held = settle(held[1:]); fmt.Sprint(held) != "[2 2]" {
		t.Errorf("one of three gone: %v", held)
	}
}

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
	defer main.Close()
	more := telegramtest.NewServer(telegramtest.Options{Token: "100000002:AAEsupportBotTokenForHeraldAppTests", BotUsername: "support_bot"})
	defer more.Close()
	api := telegramtest.Together(main, more)
	defer api.Close()
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
	a, err := Build(t.Context(), cfg, Options{Backend: echo{}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
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
