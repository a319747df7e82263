package telegram

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
)

// memState is a StateStore in memory that remembers every value set.
type memState struct {
	mu      sync.Mutex
	m       map[string]string
	history []string
}

func (s *memState) State(_ context.Context, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	return v, ok, nil
}

func (s *memState) SetState(_ context.Context, name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[name] = value
	s.history = append(s.history, value)
	return nil
}

// newAdapter makes an adapter for srv.
func newAdapter(t *testing.T, srv *telegramtest.Server, d platform.Deps) *Adapter {
	t.Helper()
	if d.Logger == nil {
		d.Logger = platformtest.Logger(t)
	}
	d.HTTPClient = network(t).Client()
	a, err := New(Options{Token: srv.Token, BaseURL: srv.URL, RequireMention: true}, d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// runAdapter runs a with h until the test ends or stop is called.
func runAdapter(t *testing.T, a *Adapter, h platform.Handler) (stop func()) {
	t.Helper()
	return platformtest.Run(t, a, h, waitTimeout)
}

func TestNewChecksTheToken(t *testing.T) {
	for _, tok := range []string{"", "  ", "no-colon", "abc:def", "0:x"} {
		if _, err := New(Options{Token: tok}, platform.Deps{}); err == nil {
			t.Errorf("New accepted token %q", tok)
		} else if tok != "" && strings.Contains(err.Error(), tok) && strings.TrimSpace(tok) != "" {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

// An update is confirmed to Telegram, and its offset saved, only once the
// handler took it; a refused update comes again, and the ones after it
// wait.
func TestUpdatesAreAcknowledgedOnlyAfterTheHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		state := &memState{}
		a := newAdapter(t, srv, platform.Deps{State: state})
		var mu sync.Mutex
		var got []string
		refuse := true
		stop := runAdapter(t, a, func(_ context.Context, in chat.Inbound) error {
			mu.Lock()
			defer mu.Unlock()
			if in.Text == "two" && refuse {
				refuse = false
				return errors.New("journal unavailable")
			}
			got = append(got, in.Text+"@"+in.EventID)
			return nil
		})
		one := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "one"})
		two := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "two"})
		three := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "three"})
		waitTaken(t, srv, three)
		stop()

		id := func(in telegramtest.Injected) string { return "123456789:" + strconv.FormatInt(in.UpdateID, 10) }
		want := []string{"one@" + id(one), "two@" + id(two), "three@" + id(three)}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("handled %q, want %q", got, want)
		}
		if v, _, _ := state.State(t.Context(), a.stateKey); v != strconv.FormatInt(three.UpdateID+1, 10) {
			t.Errorf("saved offset %q, want %d", v, three.UpdateID+1)
		}
		// The offset moved past each update once it was taken, and not before:
		// the refused update held back the ones after it.
		var wantSaved []string
		for _, in := range []telegramtest.Injected{one, two, three} {
			wantSaved = append(wantSaved, strconv.FormatInt(in.UpdateID+1, 10))
		}
		state.mu.Lock()
		defer state.mu.Unlock()
		if strings.Join(state.history, " ") != strings.Join(wantSaved, " ") {
			t.Errorf("offsets saved %v, want %v", state.history, wantSaved)
		}
	})
}

// A restarted adapter starts from the saved offset.
func TestOffsetIsResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		state := &memState{}
		a := newAdapter(t, srv, platform.Deps{State: state})
		first := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "before"})
		_ = state.SetState(t.Context(), a.stateKey, strconv.FormatInt(first.UpdateID+1, 10))
		var mu sync.Mutex
		var got []string
		runAdapter(t, a, func(_ context.Context, in chat.Inbound) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, in.Text)
			return nil
		})
		after := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "after"})
		waitTaken(t, srv, after)
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(got, ",") != "after" {
			t.Errorf("handled %q, want only the update after the saved offset", got)
		}
	})
}

func TestSourceAndMentions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		srv.AddChat(group)
		a := newAdapter(t, srv, platform.Deps{})
		var mu sync.Mutex
		got := map[string]chat.Inbound{}
		runAdapter(t, a, func(_ context.Context, in chat.Inbound) error {
			mu.Lock()
			defer mu.Unlock()
			got[in.Text] = in
			return nil
		})
		// The bot's message to reply to.
		id, err := a.Send(t.Context(), chat.Target{ChatID: strconv.FormatInt(group.ID, 10)}, "I am the bot")
		if err != nil {
			t.Fatal(err)
		}
		botMsg, _ := strconv.Atoi(id)
		userMsg := srv.Inject(telegramtest.Incoming{Chat: group, From: bob, Text: "bob speaks"}).MessageID
		cases := []struct {
			in        telegramtest.Incoming
			mentioned bool
		}{
			{telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "just talking"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "just talking in a group"}, false},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "hey @herald_bot look"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "hey @HERALD_BOT caps"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "😀😀 @herald_bot after emoji"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "hey @herald_bot2 not me"}, false},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "email herald_bot@example.com"}, false},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "/help"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "/help@herald_bot"}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "/help@other_bot"}, false},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "a reply", ReplyTo: botMsg}, true},
			{telegramtest.Incoming{Chat: group, From: alice, Text: "a reply to a user", ReplyTo: userMsg}, false},
		}
		var last telegramtest.Injected
		for _, c := range cases {
			last = srv.Inject(c.in)
		}
		waitTaken(t, srv, last)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cases {
			in, ok := got[c.in.Text]
			if !ok {
				t.Errorf("%q was not handed over", c.in.Text)
				continue
			}
			if in.Mentioned != c.mentioned {
				t.Errorf("%q: mentioned %v, want %v", c.in.Text, in.Mentioned, c.mentioned)
			}
		}
		dm := got["just talking"].Source
		if dm.Platform != Name || dm.ChatType != chat.DM || dm.ChatID != "1001" || dm.UserID != "1001" || dm.UserName != "alice" || dm.ChatName != "Alice" || dm.MessageID == "" {
			t.Errorf("DM source %+v", dm)
		}
		g := got["just talking in a group"]
		if g.Source.ChatType != chat.Group || g.Source.ChatID != strconv.FormatInt(group.ID, 10) || g.Source.ChatName != "Team" || g.Received.IsZero() {
			t.Errorf("group message %+v", g)
		}
	})
}

// In a forum topic, every message "replies" to the topic's first message;
// when the bot opened the topic, that is still no reply to the bot.
func TestTopicRootIsNoReplyToTheBot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &Adapter{botID: 42, username: "herald_bot", opts: Options{RequireMention: true}}
		bot := &models.User{ID: 42, IsBot: true}
		m := &models.Message{ID: 10, MessageThreadID: 5, IsTopicMessage: true,
			Chat:           models.Chat{ID: -100, Type: models.ChatTypeSupergroup, IsForum: true},
			ReplyToMessage: &models.Message{ID: 5, From: bot}}
		if a.mentioned(m, "hello", nil) {
			t.Error("a message in a topic the bot opened counts as a reply to the bot")
		}
		m.ReplyToMessage = &models.Message{ID: 7, From: bot}
		if !a.mentioned(m, "hello", nil) {
			t.Error("a real reply to the bot in a topic does not count")
		}
	})
}

func TestSendEditDeleteAgainstTheAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		srv.AddChat(group)
		srv.AddChat(aliceDM)
		a := newAdapter(t, srv, platform.Deps{})
		ctx := t.Context()
		gt := chat.Target{ChatID: strconv.FormatInt(group.ID, 10)}

		id, err := a.Send(ctx, gt, "**hello** <world>")
		if err != nil {
			t.Fatal(err)
		}
		msgs := srv.BotMessages(group.ID)
		if len(msgs) != 1 || msgs[0].Text != "hello <world>" || msgs[0].ParseMode != "HTML" || len(msgs[0].Entities) != 1 {
			t.Fatalf("sent %+v", msgs)
		}

		// An edit to the same text is a success, not an error.
		if err := a.Edit(ctx, gt, id, "**hello** <world>"); err != nil {
			t.Errorf("unchanged edit: %v", err)
		}
		if err := a.Edit(ctx, gt, id, "**hello** there"); err != nil {
			t.Fatal(err)
		}
		if got := srv.BotTexts(group.ID); len(got) != 1 || got[0] != "hello there" {
			t.Errorf("after the edit the chat shows %q", got)
		}

		// A parse error on an edit: the same text goes as plain text.
		srv.ParseErrorNext(group.ID, "editMessageText")
		if err := a.Edit(ctx, gt, id, "**plain** now"); err != nil {
			t.Fatal(err)
		}
		if m := srv.BotMessages(group.ID)[0]; m.Text != "**plain** now" || m.ParseMode != "" {
			t.Errorf("after a parse error the message is %+v, want the text as plain text", m)
		}

		// A 429 becomes a RateLimitError with Telegram's wait.
		srv.RateLimitNth(group.ID, "editMessageText", 1, 2)
		err = a.Edit(ctx, gt, id, "limited")
		var rl *platform.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
			t.Errorf("429: %v, want a RateLimitError of 2s", err)
		}
		if err := a.Typing(ctx, gt); !errors.As(err, &rl) {
			t.Errorf("typing during the penalty: %v, want a RateLimitError", err)
		}

		// Deleting twice is fine; editing a deleted message cannot be done.
		fresh := newPlainServer(t)
		fresh.AddChat(group)
		fresh.AddChat(aliceDM)
		b := newAdapter(t, fresh, platform.Deps{})
		id, err = b.Send(ctx, gt, "to delete")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, gt, id); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, gt, id); err != nil {
			t.Errorf("deleting a deleted message: %v", err)
		}
		if err := b.Edit(ctx, gt, id, "too late"); !errors.Is(err, platform.ErrCannotEdit) {
			t.Errorf("editing a deleted message: %v, want ErrCannotEdit", err)
		}
		if len(fresh.BotMessages(group.ID)) != 0 {
			t.Errorf("the chat still shows %+v", fresh.BotMessages(group.ID))
		}

		// Drafts: private chats only.
		dt := chat.Target{ChatID: "1001"}
		if err := b.Draft(ctx, dt, 1<<40, "thinking **hard**"); err != nil {
			t.Fatal(err)
		}
		if d := fresh.Drafts(aliceDM.ID); len(d) != 1 || d[strconv.FormatInt(draftNumber(1<<40), 10)] != "thinking hard" {
			t.Errorf("drafts %v", d)
		}
		if err := b.Draft(ctx, gt, 7, "no drafts in groups"); err == nil || errors.As(err, &rl) {
			t.Errorf("draft in a group: %v, want a plain error", err)
		}
	})
}

// A text over the limit handed to Send directly goes out in several
// messages, each within the limit.
func TestSendSplitsATextOverTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		srv.AddChat(aliceDM)
		a := newAdapter(t, srv, platform.Deps{})
		text := strings.Repeat("word ", 2000) // 10,000 characters
		if _, err := a.Send(t.Context(), chat.Target{ChatID: "1001"}, text); err != nil {
			t.Fatal(err)
		}
		msgs := srv.BotTexts(aliceDM.ID)
		if len(msgs) != 3 || squash(strings.Join(msgs, " ")) != squash(text) {
			t.Errorf("%d messages; joined text complete: %v", len(msgs), squash(strings.Join(msgs, " ")) == squash(text))
		}
	})
}

// When a group has become a supergroup, the answer goes to its new id.
func TestSendFollowsAGroupToItsSupergroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		old := telegramtest.Chat{ID: -4000, Type: telegramtest.Group, Title: "Small"}
		srv.AddChat(old)
		srv.Upgrade(old.ID, group)
		a := newAdapter(t, srv, platform.Deps{})
		if _, err := a.Send(t.Context(), chat.Target{ChatID: "-4000"}, "still here"); err != nil {
			t.Fatal(err)
		}
		if got := srv.BotTexts(group.ID); len(got) != 1 || got[0] != "still here" {
			t.Errorf("the supergroup shows %q", got)
		}
	})
}

func TestDraftNumberIsANonZero31BitNumber(t *testing.T) {
	for _, id := range []int64{1, 1 << 31, 1<<62 + 5, 0x7fffffff, 1 << 40} {
		if n := draftNumber(id); n <= 0 || n > 0x7fffffff {
			t.Errorf("draftNumber(%d) = %d", id, n)
		}
	}
	if n := draftNumber(1<<40 + 12345); n != 12345 {
		t.Errorf("draftNumber keeps %d of the low bits 12345", n)
	}
}

// The token is in every Bot API URL; it must not show in errors or logs.
func TestTokenIsNeverShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := network(t)
		dead := n.Listen()
		dead.Close() // connections are refused there
		url := "http://" + dead.Addr().String()
		const token = "987654321:AAsecret-SECRET_secret-0123456789"
		logs := &watchedLog{want: "retrying", seen: make(chan struct{})}
		a, err := New(Options{Token: token, BaseURL: url}, platform.Deps{HTTPClient: n.Client(), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		target := chat.Target{ChatID: "1"}
		for name, err := range map[string]error{
			"send":   func() error { _, err := a.Send(t.Context(), target, "x"); return err }(),
			"edit":   a.Edit(t.Context(), target, "1", "x"),
			"typing": a.Typing(t.Context(), target),
			"draft":  a.Draft(t.Context(), target, 1, "x"),
		} {
			if err == nil {
				t.Errorf("%s to a dead server succeeded", name)
			} else if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%s error shows the token: %v", name, err)
			}
		}
		if _, err := a.getUpdates(t.Context(), 0); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("getUpdates error: %v", err)
		}

		// Run against a dead server retries, logging, until stopped.
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx, func(context.Context, chat.Inbound) error { return nil }) }()
		select {
		case <-logs.seen:
		case <-time.After(waitTimeout):
			t.Error("nothing logged about the dead server")
		}
		cancel()
		<-done
		if text := logs.String(); strings.Contains(text, "SECRET") {
			t.Errorf("the logs show the token:\n%s", text)
		}

		// A token Telegram refuses ends Run with an error naming the setting,
		// not the token.
		srv := newPlainServer(t)
		b, err := New(Options{Token: token, BaseURL: srv.URL}, platform.Deps{HTTPClient: n.Client()})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Run(t.Context(), func(context.Context, chat.Inbound) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "TELEGRAM_BOT_TOKEN") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Run with a refused token: %v", err)
		}
	})
}

// watchedLog keeps what is logged and closes seen once want shows.
type watchedLog struct {
	want string
	seen chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (l *watchedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	if !l.done && strings.Contains(l.buf.String(), l.want) {
		l.done = true
		close(l.seen)
	}
	return n, err
}

func (l *watchedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Drafts are a private chat's (sendMessageDraft refuses others): the
// capabilities say so per chat, and the delivery asks them for each answer.
func TestDraftsOnlyInPrivateChats(t *testing.T) {
	a, err := New(Options{Token: testBotToken}, platform.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Caps(chat.Target{ChatID: "1001", DM: true}).Draft {
		t.Error("no drafts in a private chat")
	}
	if a.Caps(chat.Target{ChatID: "-1001000000001", ThreadID: "7"}).Draft {
		t.Error("drafts in a group's topic")
	}
}

// Hermes's group settings: without require_mention every group message is
// taken; with it, free-response chats and mention patterns still are; an
// ignored topic's messages are not handed over at all.
func TestGroupSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		other := telegramtest.Chat{ID: -1001000000009, Type: telegramtest.Supergroup, Title: "Other"}
		srv.AddChat(group)
		srv.AddChat(forum)
		srv.AddChat(other)
		srv.AddChat(aliceDM)
		run := func(o Options, in ...telegramtest.Incoming) map[string]bool {
			o.Token, o.BaseURL = srv.Token, srv.URL
			a, err := New(o, platform.Deps{Logger: platformtest.Logger(t), HTTPClient: network(t).Client()})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			got := map[string]bool{}
			stop := runAdapter(t, a, func(_ context.Context, in chat.Inbound) error {
				mu.Lock()
				defer mu.Unlock()
				got[in.Text] = in.Mentioned
				return nil
			})
			var last telegramtest.Injected
			for _, m := range in {
				last = srv.Inject(m)
			}
			waitTaken(t, srv, last)
			stop()
			mu.Lock()
			defer mu.Unlock()
			return got
		}
		got := run(Options{}, telegramtest.Incoming{Chat: group, From: alice, Text: "plain"})
		if m, ok := got["plain"]; !ok || !m {
			t.Errorf("require_mention off: %v, want the plain group message taken", got)
		}
		got = run(Options{AllowedChats: []string{strconv.FormatInt(other.ID, 10)}},
			telegramtest.Incoming{Chat: group, From: alice, Text: "not an allowed chat"},
			telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "private chats are not filtered"},
			telegramtest.Incoming{Chat: other, From: alice, Text: "an allowed chat"})
		if want := map[string]bool{"private chats are not filtered": true, "an allowed chat": true}; !maps.Equal(got, want) {
			t.Errorf("allowed chats: handed over %v, want %v", got, want)
		}
		got = run(Options{RequireMention: true, FreeResponseChats: []string{strconv.FormatInt(other.ID, 10)},
			MentionPatterns: []*regexp.Regexp{regexp.MustCompile("(?i)^hey herald")}, IgnoredThreads: []string{"77"}},
			telegramtest.Incoming{Chat: group, From: alice, Text: "plain again"},
			telegramtest.Incoming{Chat: other, From: alice, Text: "free chat"},
			telegramtest.Incoming{Chat: group, From: alice, Text: "Hey Herald, a pattern"},
			telegramtest.Incoming{Chat: forum, From: alice, Text: "@herald_bot in an ignored topic", ThreadID: 77},
			telegramtest.Incoming{Chat: forum, From: alice, Text: "@herald_bot in another topic", ThreadID: 78},
		)
		want := map[string]bool{"plain again": false, "free chat": true, "Hey Herald, a pattern": true, "@herald_bot in another topic": true}
		if !maps.Equal(got, want) {
			t.Errorf("handed over %v, want %v", got, want)
		}
	})
}

// TELEGRAM_PROXY carries the Bot API's requests.
func TestProxy(t *testing.T) {
	a, err := New(Options{Token: testBotToken, Proxy: "socks5://127.0.0.1:1080"}, platform.Deps{Logger: platformtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, DefaultBaseURL+"/bot/getMe", nil)
	if u, err := a.transport.Proxy(req); err != nil || u.String() != "socks5://127.0.0.1:1080" {
		t.Errorf("proxy %v (%v), want socks5://127.0.0.1:1080", u, err)
	}
}

// TELEGRAM_REPLY_TO_MODE: the answer's messages reply to the message
// answered never (off), with the first only (first) or all of them (all).
func TestReplyToMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newPlainServer(t)
		srv.AddChat(group)
		for mode, want := range map[string][]bool{platform.ReplyOff: {false, false}, platform.ReplyFirst: {true, false}, platform.ReplyAll: {true, true}} {
			a, err := New(Options{Token: srv.Token, BaseURL: srv.URL, ReplyToMode: mode}, platform.Deps{Logger: platformtest.Logger(t), HTTPClient: network(t).Client()})
			if err != nil {
				t.Fatal(err)
			}
			asked := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "mode " + mode})
			target := chat.Target{ChatID: strconv.FormatInt(group.ID, 10), ReplyTo: strconv.Itoa(asked.MessageID)}
			var got []bool
			for _, text := range []string{"first part of the answer", "second part"} {
				id, err := a.Send(t.Context(), target, text)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range srv.BotMessages(group.ID) {
					if strconv.Itoa(m.ID) == id {
						got = append(got, m.ReplyTo == asked.MessageID)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("mode %s: replies %v, want %v", mode, got, want)
			}
		}
	})
}
