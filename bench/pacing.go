package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/platform/matrix"
	"github.com/herald-chat/herald/internal/platform/matrix/matrixtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

// pacedAnswer is one answer relayed to a platform that keeps its rate
// limits: how long the agent wrote it, and how long after the agent the
// platform showed its first and its final text.
type pacedAnswer struct {
	Length      time.Duration // the agent's answer
	First       time.Duration // the agent's first content → the platform's first text
	Final       time.Duration // the agent's [DONE] → the platform's final text
	Tokens      float64       // Matrix: the account's tokens when the agent began (0 for Telegram)
	Differences int           // the final text is not what the agent sent
}

// pacingResult is measure 6: answers through Telegram and Matrix with their
// flood control on in the fakes, as the platforms document it.
type pacingResult struct {
	Telegram, Matrix        []pacedAnswer
	TelegramOver, MatrixOut int // calls over a budget or during a penalty
	TelegramErr, MatrixErr  error
	MatrixSkipped           string // why Matrix did not run
}

// pacingTPS is the agent's writing speed in measure 6.
const pacingTPS = 30

func measurePacing(ctx context.Context, c benchConfig) *pacingResult {
	res := &pacingResult{}
	c.logf("pacing: %d Telegram answers of %v at %d tokens/s, %d at a time", c.PacingTelegram, c.PacingLengths, pacingTPS, c.PacingParallel)
	res.Telegram, res.TelegramOver, res.TelegramErr = measureTelegramPacing(ctx, c)
	if _, err := exec.LookPath("dendrite"); err != nil {
		res.MatrixSkipped = "Dendrite is not on PATH (.ci/dendrite.sh installs it)"
		return res
	}
	c.logf("pacing: %d Matrix answers of %v, one at a time (the budget is the account's)", c.PacingMatrix, c.PacingLengths)
	res.Matrix, res.MatrixOut, res.MatrixErr = measureMatrixPacing(ctx, c)
	return res
}

// pacingShape is the simulator's answer of one length.
func pacingShape(length time.Duration) streamShape {
	return streamShape{Tokens: int(length.Seconds()*pacingTPS) + 1, TPS: pacingTPS}
}

// agents are simulators of answers of several lengths behind one address:
// each chat is answered by the one of the length it was given, so that one
// gateway, whose platform budgets last across the answers, serves them all.
type agents struct {
	URL  string
	srv  *http.Server
	done chan struct{}

	mu    sync.Mutex
	taps  map[time.Duration]*tap
	chats map[string]time.Duration
}

func startAgents(lengths []time.Duration) (*agents, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &agents{URL: "http://" + ln.Addr().String(), done: make(chan struct{}), taps: map[time.Duration]*tap{}, chats: map[string]time.Duration{}}
	for _, l := range lengths {
		o := pacingShape(l).simOptions()
		o.AllowSessionWithoutKey, o.Logger = true, slog.New(slog.DiscardHandler)
		a.taps[l] = newTap(sim.New(o))
	}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go func() { defer close(a.done); _ = a.srv.Serve(ln) }()
	return a, nil
}

func (a *agents) close() {
	_ = a.srv.Close()
	<-a.done
}

// assign gives a chat its answer length.
func (a *agents) assign(chat string, length time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.chats[chat] = length
}

// tapOf is the tap in front of a chat's simulator.
func (a *agents) tapOf(chat string) *tap {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.chats[chat]; ok {
		return a.taps[l]
	}
	for _, t := range a.taps {
		return t // /health, /v1/models: any will do
	}
	return nil
}

func (a *agents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.tapOf(r.Header.Get(chatIDHeader)).ServeHTTP(w, r)
}

// measureTelegramPacing relays answers of each length to private chats of
// the fake Bot API, with Telegram's documented flood limits on, through
// one gateway.
func measureTelegramPacing(ctx context.Context, c benchConfig) ([]pacedAnswer, int, error) {
	tg := telegramtest.NewServer(telegramtest.Options{Token: benchBotToken, Flood: &telegramtest.DocumentedFlood})
	defer tg.Close()
	ag, err := startAgents(c.PacingLengths)
	if err != nil {
		return nil, 0, err
	}
	defer ag.close()
	ch, err := startChild(ctx, ag.URL, "default",
		"TELEGRAM_BOT_TOKEN="+tg.Token, "TELEGRAM_BASE_URL="+tg.URL, "TELEGRAM_ALLOW_ALL_USERS=true")
	if err != nil {
		return nil, 0, err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  []pacedAnswer
		errs []error
		sem  = make(chan struct{}, c.PacingParallel)
	)
	for i := range c.PacingTelegram {
		length := c.PacingLengths[i%len(c.PacingLengths)]
		id := int64(7_000_001 + i)
		user := telegramtest.User{ID: id, FirstName: "Bench"}
		chat := telegramtest.Chat{ID: id, Type: telegramtest.Private, FirstName: "Bench"}
		tg.AddChat(chat)
		ag.assign(strconv.FormatInt(id, 10), length)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			a, err := telegramAnswer(ctx, tg, ag, chat, user, length)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, a)
		}()
	}
	wg.Wait()
	if w := ch.stop(); w != "" {
		errs = append(errs, fmt.Errorf("the gateway logged: %s", truncateLines(w, 5)))
	}
	return out, len(tg.Violations()), errors.Join(errs...)
}

// benchBotToken is the bot token measure 6 gives the fake Bot API, shaped
// as @BotFather's are.
const benchBotToken = "123456789:AAbenchbenchbenchbenchbenchbench"

// telegramAnswer asks in one chat and times the answer: the first text is
// the first draft (or message), the final text the one message sent.
func telegramAnswer(ctx context.Context, tg *telegramtest.Server, ag *agents, chat telegramtest.Chat, user telegramtest.User, length time.Duration) (pacedAnswer, error) {
	tg.Inject(telegramtest.Incoming{Chat: chat, From: user, Text: "bench"})
	wait, cancel := context.WithTimeout(ctx, length+time.Minute)
	defer cancel()
	if err := tg.WaitFor(wait, func() bool { return len(tg.BotMessages(chat.ID)) > 0 }); err != nil {
		return pacedAnswer{}, fmt.Errorf("telegram chat %d: no answer: %w", chat.ID, err)
	}
	up, err := upstreamOf(wait, ag, strconv.FormatInt(chat.ID, 10))
	if err != nil {
		return pacedAnswer{}, err
	}
	var first, final time.Time
	for _, c := range tg.CallsTo(chat.ID) {
		if c.Status != 200 {
			continue
		}
		if first.IsZero() && (c.Method == "sendMessageDraft" || c.Method == "sendMessage") {
			first = c.At
		}
		if c.Method == "sendMessage" {
			final = c.At
		}
	}
	a := pacedAnswer{Length: up.LastByte.Sub(up.FirstText), First: first.Sub(up.FirstText), Final: final.Sub(up.LastByte)}
	if shown := tg.BotMessages(chat.ID); len(shown) != 1 || squash(shown[0].Text) != squash(up.Text) {
		a.Differences = 1
	}
	return a, nil
}

// upstreamOf waits for the simulator's record of a chat's answer.
func upstreamOf(ctx context.Context, ag *agents, key string) (upstreamRecord, error) {
	for {
		if up, ok := ag.tapOf(key).record(key, time.Until(deadlineOf(ctx))); ok && !up.LastByte.IsZero() {
			return up, nil
		}
		select {
		case <-ctx.Done():
			return upstreamRecord{}, fmt.Errorf("chat %s: the agent's answer was not seen whole: %w", key, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

// squash folds white space, to compare texts as shown.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// measureMatrixPacing relays answers of each length, one at a time, to DMs
// on a Dendrite behind Synapse's default rc_message (0.2 events a second,
// bursts of 10, for the bot's account), reactions on.
func measureMatrixPacing(ctx context.Context, c benchConfig) ([]pacedAnswer, int, error) {
	const botLocal, botPassword, userPassword = "herald", "bench-bot-password", "bench-user-password"
	botID := "@" + botLocal + ":" + matrixtest.ServerName
	srv, err := matrixtest.Launch(matrixtest.Options{Limit: &matrixtest.Limit{Users: []string{botID}, Bucket: matrix.MessageBudget}})
	if err != nil {
		return nil, 0, err
	}
	defer srv.Close()
	if _, _, _, err := srv.RegisterUser(botLocal, botPassword); err != nil {
		return nil, 0, err
	}
	userID, token, _, err := srv.RegisterUser("bench", userPassword)
	if err != nil {
		return nil, 0, err
	}
	cli, err := mautrix.NewClient(srv.URL(), id.UserID(userID), token)
	if err != nil {
		return nil, 0, err
	}
	ag, err := startAgents(c.PacingLengths)
	if err != nil {
		return nil, 0, err
	}
	defer ag.close()
	ch, err := startChild(ctx, ag.URL, "default",
		"MATRIX_HOMESERVER="+srv.URL(), "MATRIX_USER_ID="+botID, "MATRIX_PASSWORD="+botPassword,
		"MATRIX_E2EE_MODE=off", "MATRIX_ALLOW_ALL_USERS=true")
	if err != nil {
		return nil, 0, err
	}
	defer ch.stop()
	var out []pacedAnswer
	for i := range c.PacingMatrix {
		a, err := matrixAnswer(ctx, srv, cli, ag, botID, c.PacingLengths[i%len(c.PacingLengths)])
		if err != nil {
			return out, len(srv.Violations()), err
		}
		out = append(out, a)
	}
	return out, len(srv.Violations()), nil
}

// matrixAnswer opens a DM with the bot, asks in it and times the answer
// from the events the bot sent through the limiter: the first text is its
// first message, the final text its last edit.
func matrixAnswer(ctx context.Context, srv *matrixtest.Server, cli *mautrix.Client, ag *agents, botID string, length time.Duration) (pacedAnswer, error) {
	wait, cancel := context.WithTimeout(ctx, length+3*time.Minute)
	defer cancel()
	created, err := cli.CreateRoom(wait, &mautrix.ReqCreateRoom{Invite: []id.UserID{id.UserID(botID)}, IsDirect: true, Preset: "trusted_private_chat"})
	if err != nil {
		return pacedAnswer{}, err
	}
	room := created.RoomID
	ag.assign(string(room), length)
	for {
		if members, err := cli.JoinedMembers(wait, room); err == nil && len(members.Joined) == 2 {
			break
		}
		select {
		case <-wait.Done():
			return pacedAnswer{}, fmt.Errorf("matrix room %s: the bot never joined: %w", room, wait.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := cli.SendMessageEvent(wait, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "bench"}); err != nil {
		return pacedAnswer{}, err
	}
	up, err := upstreamOf(wait, ag, string(room))
	if err != nil {
		return pacedAnswer{}, err
	}
	texts := func() []matrixtest.Event {
		var out []matrixtest.Event
		for _, e := range srv.Events() {
			if e.Room == string(room) && e.Type == "m.room.message" && !e.Refused {
				out = append(out, e)
			}
		}
		return out
	}
	for {
		if t := texts(); len(t) > 0 && !t[len(t)-1].At.Before(up.LastByte) {
			first, final := t[0], t[len(t)-1]
			return pacedAnswer{Length: up.LastByte.Sub(up.FirstText), First: first.At.Sub(up.FirstText), Final: final.At.Sub(up.LastByte),
				Tokens: levelAt(srv.Events(), up.FirstText)}, nil
		}
		select {
		case <-wait.Done():
			return pacedAnswer{}, fmt.Errorf("matrix room %s: the final text never came: %w", room, wait.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// levelAt is how many tokens the bot's budget (Synapse's rc_message) held
// at a time, from the events it sent before.
func levelAt(events []matrixtest.Event, at time.Time) float64 {
	b := matrix.MessageBudget
	level := float64(b.Burst)
	for _, e := range events {
		if e.At.After(at) {
			break
		}
		if !e.Refused {
			level = min(float64(b.Burst), e.Level-1+b.Rate*at.Sub(e.At).Seconds())
		}
	}
	return level
}

// byLength groups answers by their length, shortest first.
func byLength(answers []pacedAnswer, lengths []time.Duration) map[time.Duration][]pacedAnswer {
	out := map[time.Duration][]pacedAnswer{}
	for _, a := range answers {
		i := slices.IndexFunc(lengths, func(l time.Duration) bool { return a.Length <= l+time.Second })
		if i < 0 {
			i = len(lengths) - 1
		}
		out[lengths[i]] = append(out[lengths[i]], a)
	}
	return out
}
