package discord

// These tests drive the real gateway (runner, streaming delivery, SQLite
// store) with the adapter against the fake Discord, and the Hermes API
// simulator or a scripted backend behind.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/discord/discordtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/texts"
)

// The routes of the calls the tests look at, as the fake names them.
const (
	createRoute = "POST /channels/{channel.id}/messages"
	editRoute   = "PATCH /channels/{channel.id}/messages/{message.id}"
	typing      = "POST /channels/{channel.id}/typing"
)

// In a DM the answer is a message edited as it grows, typing shows while
// the agent thinks, the final text is exact, and a second message keeps
// the session; the commands are registered as slash commands.
func TestDMAnswerIsStreamedByEdits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{FirstTokenDelay: 9 * time.Second, TokensPerSecond: 20, AnswerTokens: 40})
	g := w.start(b, w.options())

	var names []string
	for _, c := range w.srv.Commands() {
		names = append(names, c.Name)
	}
	if want := []string{"new", "reset", "stop", "status", "sethome", "help"}; !slices.Equal(names, want) {
		t.Errorf("slash commands %v, want %v", names, want)
	}

	asked := w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "hello"})
	final := w.waitAnswer(b, aliceDM.ID, "hello")
	if !strings.HasPrefix(final, `[Hermes simulator · turn 1] You said: "hello".`) {
		t.Errorf("final answer %q is not the simulator's", final)
	}
	msgs := w.srv.BotMessages(aliceDM.ID)
	if len(msgs) != 1 || msgs[0].Content != final || msgs[0].ReplyTo != asked.ID {
		t.Fatalf("the DM shows %+v, want one message %q replying to %s", msgs, final, asked.ID)
	}
	if msgs[0].Edits == 0 {
		t.Errorf("the answer was never edited: it was not streamed")
	}
	calls := w.srv.CallsTo(aliceDM.ID)
	firstText := slices.IndexFunc(calls, func(c discordtest.Call) bool { return c.Route == createRoute })
	var typed []time.Time
	for _, c := range calls[:max(firstText, 0)] {
		if c.Route == typing {
			typed = append(typed, c.At)
		}
	}
	// The indicator lasts 10 s: while the agent thinks for 9 s it is
	// shown, then refreshed once, not every few seconds.
	if len(typed) != 2 || typed[1].Sub(typed[0]) < typingEvery-100*time.Millisecond {
		t.Errorf("typing at %v before the first text, want twice, %s apart: %s", typed, typingEvery, routes(calls))
	}
	w.waitFor("the asking message marked done (👀 replaced by ✅)", func() bool {
		i := slices.IndexFunc(w.srv.Messages(aliceDM.ID), func(m discordtest.Message) bool { return m.ID == asked.ID })
		return i >= 0 && slices.Equal(w.srv.Messages(aliceDM.ID)[i].Reactions, []string{"✅"})
	})

	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "and again"})
	second := w.waitAnswer(b, aliceDM.ID, "and again")
	if !strings.HasPrefix(second, "[Hermes simulator · turn 2]") {
		t.Errorf("second answer %q: the session was not kept", second)
	}
	turns := b.Turns()
	if len(turns) != 2 || turns[0].SessionID == "" || turns[0].SessionID != turns[1].SessionID {
		t.Errorf("sessions of the two turns differ or are empty: %q, %q", turns[0].SessionID, turns[1].SessionID)
	}
	g.Stop()
	w.checkPenalties(aliceDM.ID)
}

// In a server channel the bot answers only when mentioned, replied to, in
// a free-response channel, or in a thread it started; a thread is a
// session of its own.
func TestGuildRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	simSrv, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 30})
	g := w.start(b, w.options())

	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "hello everyone"})
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "ask <@" + bob.ID + "> instead"})
	// Messages are taken in order: once this one is answered, the two
	// before were taken, and not answered.
	mention := "<@" + w.srv.Bot.ID + "> what is up?"
	asked := w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: mention})
	final := w.waitAnswer(b, general.ID, "what is up?")
	if n := simSrv.Stats().Requests; n != 1 {
		t.Errorf("%d requests upstream, want 1: only the mention is for the bot", n)
	}
	msgs := w.srv.BotMessages(general.ID)
	if len(msgs) != 1 || msgs[0].Content != final || msgs[0].ReplyTo != asked.ID {
		t.Fatalf("the channel shows %+v, want one answer replying to the mention", msgs)
	}

	// A reply to the bot's answer, without a mention.
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "tell me more", ReplyTo: msgs[0].ID})
	more := w.waitAnswer(b, general.ID, "tell me more")
	if !strings.HasPrefix(more, "[Hermes simulator · turn 2]") {
		t.Errorf("the reply %q did not continue alice's channel session", more)
	}

	// A free-response channel takes every message.
	w.srv.Inject(discordtest.Incoming{ChannelID: free.ID, Author: alice, Content: "no mention needed"})
	w.waitAnswer(b, free.ID, "no mention needed")

	// A thread is a session of its own, and needs a mention there too
	// (the bot did not start it).
	w.srv.Inject(discordtest.Incoming{ChannelID: topic.ID, Author: alice, Content: "<@" + w.srv.Bot.ID + "> in the thread"})
	inThread := w.waitAnswer(b, topic.ID, "in the thread")
	if !strings.HasPrefix(inThread, "[Hermes simulator · turn 1]") {
		t.Errorf("the thread's answer %q continued another session", inThread)
	}
	g.Stop()
	if got := w.srv.BotMessages(quiet.ID); len(got) != 0 {
		t.Errorf("the bot spoke in a channel nobody asked in: %+v", got)
	}
	for _, ch := range []string{general.ID, free.ID, topic.ID} {
		w.checkPenalties(ch)
	}
}

// With auto-thread, a mention in a channel is answered in a thread started
// on it; the thread's next messages need no mention and share its session.
func TestAutoThread(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 30})
	opts := w.options()
	opts.AutoThread = true
	g := w.start(b, opts)

	asked := w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "<@" + w.srv.Bot.ID + "> plan the trip\nwith details"})
	final := w.waitAnswer(b, asked.ID, "plan the trip\nwith details")
	if got := w.srv.BotMessages(general.ID); len(got) != 0 {
		t.Errorf("the answer went to the channel too: %+v", got)
	}
	var started discordtest.Message
	for _, m := range w.srv.Messages(general.ID) {
		if m.ID == asked.ID {
			started = m
		}
	}
	if started.Thread != asked.ID {
		t.Fatalf("no thread started on the asking message: %+v", started)
	}
	thread := w.srv.BotMessages(asked.ID)
	if len(thread) != 1 || thread[0].Content != final {
		t.Fatalf("the thread shows %+v, want the answer %q", thread, final)
	}

	w.srv.Inject(discordtest.Incoming{ChannelID: asked.ID, Author: alice, Content: "and the hotel?"})
	next := w.waitAnswer(b, asked.ID, "and the hotel?")
	if !strings.HasPrefix(next, "[Hermes simulator · turn 2]") {
		t.Errorf("the thread's second answer %q is not its session's second turn", next)
	}
	g.Stop()
}

// A 429 on the first edit: nothing goes to that route of the channel
// during the penalty, and the final answer is exact and shown once.
func TestRateLimitOnTheFirstEdit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	w.srv.RateLimitNth(aliceDM.ID, editRoute, 1, 3*time.Second)
	answer := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 30, Every: 50 * time.Millisecond})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "write"})
	final := w.waitAnswer(b, aliceDM.ID, "write")
	g.Stop()
	if final != strings.TrimSpace(answer) && final != answer {
		t.Errorf("final %q, want the answer", final)
	}
	penalties := w.srv.Penalties(aliceDM.ID)
	if len(penalties) != 1 {
		t.Fatalf("penalties %+v, want the one forced", penalties)
	}
	w.checkPenalties(aliceDM.ID)
	if msgs := w.srv.BotMessages(aliceDM.ID); len(msgs) != 1 {
		t.Errorf("%d messages, want the answer once", len(msgs))
	}
}

// An answer of over 5,000 characters with a code block across the split:
// every message within 2,000 characters, fences balanced in each, and
// every line of the answer shown once.
func TestLongAnswerIsSplitWithFencesBalanced(t *testing.T) {
	t.Parallel()
	var md strings.Builder
	var code []string
	md.WriteString("Here is the program you asked for.\n\n```go\n")
	for i := range 160 {
		line := fmt.Sprintf("fmt.Println(%q)", fmt.Sprintf("line %03d of the program", i))
		code = append(code, line)
		md.WriteString(line + "\n")
	}
	md.WriteString("```\n\nThat is all.")
	answer := md.String()
	if utf8.RuneCountInString(answer) < 5000 {
		t.Fatalf("the answer has only %d characters", utf8.RuneCountInString(answer))
	}
	w := newWorld(t, discordtest.Options{})
	b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 80, Every: 10 * time.Millisecond})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "<@" + w.srv.Bot.ID + "> code please"})
	w.waitFor("the whole answer", func() bool {
		_, done := b.Final("code please")
		msgs := w.srv.BotMessages(general.ID)
		return done && len(msgs) > 0 && strings.HasSuffix(msgs[len(msgs)-1].Content, "That is all.")
	})
	g.Stop()

	msgs := w.srv.BotMessages(general.ID)
	if len(msgs) < 3 {
		t.Errorf("%d messages for %d characters", len(msgs), utf8.RuneCountInString(answer))
	}
	var shown []string
	for i, m := range msgs {
		if n := utf8.RuneCountInString(m.Content); n > MaxLength {
			t.Errorf("message %d has %d characters", i, n)
		}
		inCode := false
		for _, line := range strings.Split(m.Content, "\n") {
			switch {
			case strings.HasPrefix(line, "```"):
				if !inCode && line != "```go" {
					t.Errorf("message %d opens a fence %q, want ```go", i, line)
				}
				inCode = !inCode
			case strings.HasPrefix(line, "fmt.Println("):
				if !inCode {
					t.Errorf("message %d: code line %q outside a code block", i, line)
				}
				shown = append(shown, line)
			}
		}
		if inCode {
			t.Errorf("message %d leaves a code block open", i)
		}
	}
	if !slices.Equal(shown, code) {
		t.Errorf("%d code lines shown, want each of the 160 once, in order", len(shown))
	}
	if !strings.HasPrefix(msgs[0].Content, "Here is the program") {
		t.Errorf("the first message starts %q", msgs[0].Content[:min(40, len(msgs[0].Content))])
	}
	w.checkPenalties(general.ID)
}

// The agent's @everyone, @here and role pings ping nobody; the asking user
// is the only one a message may ping.
func TestAnswersPingNobodyElse(t *testing.T) {
	t.Parallel()
	answer := "@everyone and @here, see <@&400000000000000001> and <@" + bob.ID + ">."
	w := newWorld(t, discordtest.Options{})
	b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 200, Every: 10 * time.Millisecond})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "<@" + w.srv.Bot.ID + "> ping them"})
	w.waitAnswer(b, general.ID, "ping them")
	g.Stop()
	msgs := w.srv.BotMessages(general.ID)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	// The reply pings alice, who asked; nobody else.
	if p := msgs[0].Pings; !slices.Equal(p, []string{alice.ID}) {
		t.Errorf("the answer pings %v, want alice only", p)
	}
	if am := msgs[0].AllowedMentions; am == nil || len(am.Parse) != 0 || !slices.Equal(am.Users, []string{alice.ID}) {
		t.Errorf("allowed_mentions %+v, want no parse and alice only", am)
	}
}

// A user who is not allowed gets nothing, and the agent hears nothing.
func TestUnauthorizedUserReachesNoAgent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	simSrv, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 20})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: stranger, Content: "<@" + w.srv.Bot.ID + "> let me in"})
	w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "<@" + w.srv.Bot.ID + "> after him"})
	w.waitAnswer(b, general.ID, "after him")
	g.Stop()
	if n := simSrv.Stats().Requests; n != 1 {
		t.Errorf("%d requests upstream, want alice's only", n)
	}
	if n := b.Calls("let me in"); n != 0 {
		t.Errorf("the stranger's message reached the agent %d times", n)
	}
}

// Images reach the agent as image parts; other files are named in the
// text it gets.
func TestAttachments(t *testing.T) {
	t.Parallel()
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 10})
	opts := w.options()
	opts.MaxMediaBytes = 1000
	g := w.start(b, opts)
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "what is this?", Attachments: []discordtest.Attachment{
		{Filename: "cat.png", ContentType: "image/png", Data: png},
		{Filename: "report.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.7")},
		{Filename: "huge.png", ContentType: "image/png", Data: append(png, make([]byte, 2000)...)},
	}})
	w.waitFor("the turn", func() bool { return len(b.Turns()) == 1 })
	turn := b.Turns()[0]
	g.Stop()
	if len(turn.Images) != 1 || turn.Images[0].MIMEType != "image/png" || string(turn.Images[0].Data) != string(png) {
		t.Errorf("the agent got %d images, want the PNG", len(turn.Images))
	}
	if !strings.HasPrefix(turn.Message, "what is this?") || !strings.Contains(turn.Message, "report.pdf") ||
		!strings.Contains(turn.Message, "huge.png") || !strings.Contains(turn.Message, "DISCORD_MAX_MEDIA_BYTES") {
		t.Errorf("the agent read %q, want the text, the PDF named and the image over the cap named", turn.Message)
	}
}

// /new through a slash command is deferred at once and answered in the
// deferred response; the next message starts a new session. Typed, the
// same command works too.
func TestSlashCommandStartsANewSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 10})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "first"})
	w.waitAnswer(b, aliceDM.ID, "first")

	id := w.srv.InjectInteraction(discordtest.Interaction{Name: "new", ChannelID: aliceDM.ID, User: alice})
	w.waitFor("the command's answer", func() bool {
		rs := w.srv.InteractionResponses(id)
		return len(rs) >= 2 && rs[len(rs)-1].Content == texts.NewSession
	})
	if rs := w.srv.InteractionResponses(id); rs[0].Type != 5 {
		t.Errorf("the first response is %+v, want a deferred one (type 5)", rs[0])
	}
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "second"})
	if second := w.waitAnswer(b, aliceDM.ID, "second"); !strings.HasPrefix(second, "[Hermes simulator · turn 1]") {
		t.Errorf("after /new the answer is %q, want a new session's first turn", second)
	}

	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "/new"})
	w.waitFor("the typed command's answer", func() bool {
		msgs := w.srv.BotMessages(aliceDM.ID)
		return len(msgs) > 0 && msgs[len(msgs)-1].Content == texts.NewSession
	})
	turns := b.Turns()
	g.Stop()
	if len(turns) != 2 || turns[0].SessionID == turns[1].SessionID {
		t.Errorf("turns %d, sessions equal: /new did not start a new session", len(turns))
	}
}

// The gateway's op 7 in the middle of an answer: the session resumes, the
// answer completes once, and a message dispatched while the connection
// was down is answered once.
func TestReconnectMidAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	answer := strings.Repeat("Resumed answers complete once. ", 30)
	b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 20, Every: 100 * time.Millisecond})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "long one"})
	w.waitFor("the first text", func() bool { return len(w.srv.BotMessages(aliceDM.ID)) > 0 })
	w.srv.SendReconnect()
	w.waitFor("the resume", func() bool { return w.srv.Resumes() == 1 })
	w.srv.DropConnection()
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "while away"})
	w.waitFor("the second resume", func() bool { return w.srv.Resumes() == 2 })
	w.waitAnswer(b, aliceDM.ID, "while away")
	g.Stop()
	if n := b.Calls("long one"); n != 1 {
		t.Errorf("the first message ran %d times", n)
	}
	if n := b.Calls("while away"); n != 1 {
		t.Errorf("the message sent during the reconnect ran %d times", n)
	}
	if n := w.srv.Identifies(); n != 1 {
		t.Errorf("%d IDENTIFYs: the session was not resumed", n)
	}
	for _, m := range w.srv.BotMessages(aliceDM.ID) {
		if strings.HasSuffix(m.Content, "▉") {
			t.Errorf("a message was left with the cursor: %q", m.Content)
		}
	}
}

// Discord invalidates the session while the connection is down: the
// message dispatched meanwhile is never replayed, and is read back after
// the new session's READY, answered once.
func TestInvalidSessionReadsBackWhatItMissed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 10})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "first"})
	w.waitAnswer(b, aliceDM.ID, "first")
	w.srv.DropConnection()
	w.srv.InvalidateSession(false)
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "lost in the gap"})
	w.waitAnswer(b, aliceDM.ID, "lost in the gap")
	g.Stop()
	if n := w.srv.Identifies(); n != 2 {
		t.Errorf("%d IDENTIFYs, want a fresh one after op 9", n)
	}
	if n := b.Calls("lost in the gap"); n != 1 {
		t.Errorf("the missed message ran %d times", n)
	}
	if n := b.Calls("first"); n != 1 {
		t.Errorf("the message before ran %d times", n)
	}
}

// A message sent while Herald was stopped is answered once after the
// restart, read back from the channel; nothing before it runs again.
func TestRestartAnswersWhatCameWhileStopped(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	_, b := w.sim(sim.Options{TokensPerSecond: 50, AnswerTokens: 10})
	g := w.start(b, w.options())
	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "before"})
	w.waitAnswer(b, aliceDM.ID, "before")
	g.Stop()

	w.srv.Inject(discordtest.Incoming{ChannelID: aliceDM.ID, Author: alice, Content: "while stopped"})

	g = w.start(b, w.options())
	w.waitAnswer(b, aliceDM.ID, "while stopped")
	g.Stop()
	if n := b.Calls("while stopped"); n != 1 {
		t.Errorf("the message sent while stopped ran %d times", n)
	}
	if n := b.Calls("before"); n != 1 {
		t.Errorf("the message before the restart ran %d times", n)
	}
	if n := w.srv.Identifies(); n != 2 {
		t.Errorf("%d IDENTIFYs, want one per start", n)
	}
}

// Discord's refusals at start-up say what to change.
func TestStartUpRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*discordtest.Server, *Options)
		want  string
	}{
		{"intents", func(*discordtest.Server, *Options) {}, "MESSAGE CONTENT INTENT"},
		{"gateway token", func(s *discordtest.Server, _ *Options) { s.CloseNextIdentify(4004, "Authentication failed.") }, "4004"},
		{"REST token", func(_ *discordtest.Server, o *Options) {
			o.Token = "MTAwMDAwMDAwMDAwMDAwMDAx.wrong1.not-the-token-of-this-bot"
		}, "DISCORD_BOT_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, discordtest.Options{RefuseMessageContent: tc.name == "intents"})
			opts := w.options()
			tc.setup(w.srv, &opts)
			a, err := New(opts, platformDeps(w, t))
			if err != nil {
				t.Fatal(err)
			}
			err = a.Run(t.Context(), func(context.Context, chat.Inbound) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(fmt.Sprint(err), w.srv.Token) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

// A send made again (as the delivery retries one that timed out) posts
// nothing new: the nonce returns the message made the first time.
func TestRepeatedSendPostsOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	a, err := New(w.options(), platformDeps(w, t))
	if err != nil {
		t.Fatal(err)
	}
	asked := w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "hi"})
	target := chat.Target{ChatID: general.ID, ReplyTo: asked.ID, Asker: alice.ID}
	first, err := a.Send(t.Context(), target, "the answer")
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Send(t.Context(), target, "the answer")
	if err != nil || again != first {
		t.Errorf("the same send again gave %s (%v), want the first message %s", again, err, first)
	}
	if _, err := a.Send(t.Context(), target, "another answer"); err != nil {
		t.Fatal(err)
	}
	if msgs := w.srv.BotMessages(general.ID); len(msgs) != 2 || msgs[0].ReplyTo != asked.ID {
		t.Errorf("the channel shows %+v, want two messages replying to the question", msgs)
	}
}

// DISCORD_REPLY_TO_MODE, as in Hermes: the first message of an answer
// replies to the question (first, the default), every one does (all), or
// none (off).
func TestReplyToMode(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string][]bool{platform.ReplyOff: {false, false}, platform.ReplyFirst: {true, false}, platform.ReplyAll: {true, true}} {
		w := newWorld(t, discordtest.Options{})
		opts := w.options()
		opts.ReplyToMode = mode
		a, err := New(opts, platformDeps(w, t))
		if err != nil {
			t.Fatal(err)
		}
		asked := w.srv.Inject(discordtest.Incoming{ChannelID: general.ID, Author: alice, Content: "hi"})
		target := chat.Target{ChatID: general.ID, ReplyTo: asked.ID, Asker: alice.ID}
		for _, text := range []string{"part one", "part two"} {
			if _, err := a.Send(t.Context(), target, text); err != nil {
				t.Fatal(err)
			}
		}
		msgs := w.srv.BotMessages(general.ID)
		if len(msgs) != 2 {
			t.Fatalf("%s: the channel shows %+v", mode, msgs)
		}
		for i, m := range msgs {
			if (m.ReplyTo == asked.ID) != want[i] {
				t.Errorf("%s: message %d replies to %q, want a reply: %v", mode, i, m.ReplyTo, want[i])
			}
		}
	}
}
