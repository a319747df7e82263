package slack

// These tests drive the real gateway (runner, streaming delivery, SQLite
// store) with the adapter against the fake Slack, and the Hermes API
// simulator or a scripted backend behind, in synctest bubbles.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/slack/slacktest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/texts"
)

// A direct message is answered in the conversation by a message posted,
// then updated as the answer grows; the final text is exact; a second
// message keeps the session.
func TestDMIsAnsweredByPostAndUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{FirstTokenDelay: time.Second, TokensPerSecond: 20, AnswerTokens: 60})
		g := w.start(b, w.options())

		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "hello"})
		final := w.waitAnswer(b, aliceDM.ID, "", "hello")
		if !strings.HasPrefix(final, `[Hermes simulator · turn 1] You said: "hello".`) {
			t.Errorf("final answer %q is not the simulator's", final)
		}
		msgs := w.botMessages(aliceDM.ID, "")
		if len(msgs) != 1 || msgs[0].Streamed || msgs[0].Edits == 0 {
			t.Fatalf("the DM shows %+v, want one posted message, updated as it grew", msgs)
		}
		if n := len(w.srv.CallsOf("chat.startStream")); n != 0 {
			t.Errorf("%d streams started outside a thread", n)
		}
		if src := b.Turns()[0].Source; src.UserID != alice.ID || src.UserName == "" || src.ChatType != "dm" {
			t.Errorf("the agent was told the message came from %+v, want alice, by name, in a DM", src)
		}

		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "and again"})
		second := w.waitAnswer(b, aliceDM.ID, "", "and again")
		if !strings.HasPrefix(second, "[Hermes simulator · turn 2]") {
			t.Errorf("second answer %q: the session was not kept", second)
		}
		g.Stop()
	})
}

// A thread in a DM (as Slack's AI apps hold their conversations) is a
// session of its own, answered by Slack's native stream: started with the
// first words, appended to, stopped with the final text exact; the thread
// shows "is thinking…" until then.
func TestDMThreadIsAnsweredByANativeStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{FirstTokenDelay: 3 * time.Second, TokensPerSecond: 20, AnswerTokens: 60})
		g := w.start(b, w.options())

		first := w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "hello"})
		w.waitAnswer(b, aliceDM.ID, "", "hello")
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "tell me more", ThreadTS: first})
		final := w.waitAnswer(b, aliceDM.ID, first, "tell me more")
		if !strings.HasPrefix(final, "[Hermes simulator · turn 1]") {
			t.Errorf("answer %q: the thread did not start a session of its own", final)
		}
		msgs := w.botMessages(aliceDM.ID, first)
		if len(msgs) != 1 || !msgs[0].Streamed || msgs[0].Appends == 0 || msgs[0].Edits != 0 {
			t.Fatalf("the thread shows %+v, want one native stream, appended to", msgs)
		}
		if n := len(w.srv.CallsOf("chat.stopStream")); n != 1 {
			t.Errorf("%d chat.stopStream calls, want 1", n)
		}
		statuses := w.srv.Statuses(aliceDM.ID, first)
		if len(statuses) == 0 || statuses[0].Text != thinking {
			t.Errorf("the thread's status went %+v, want %q first", statuses, thinking)
		}
		g.Stop()
	})
}

// In a channel nothing is answered without a mention; a mention is
// answered in the thread of the asking message, streamed, and a reply in
// that thread continues its session without a mention. The bot's own
// messages, which Slack sends back, are not answered.
func TestChannelMentionIsAnsweredInItsThread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Slack sends the bot's own messages back as events: they are
		// not taken for users'.
		w := newWorld(t, slacktest.Options{EchoBotMessages: true})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 40})
		g := w.start(b, w.options())

		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: "just chatting"})
		asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "what time is it?"})
		final := w.waitAnswer(b, general.ID, asked, "what time is it?")
		if !strings.HasPrefix(final, "[Hermes simulator · turn 1]") {
			t.Errorf("answer %q", final)
		}
		if msgs := w.botMessages(general.ID, asked); len(msgs) != 1 || !msgs[0].Streamed {
			t.Errorf("the thread shows %+v, want one native stream", msgs)
		}
		start := w.srv.CallsOf("chat.startStream")
		if len(start) != 1 || start[0].Params["recipient_user_id"] != alice.ID || start[0].Params["recipient_team_id"] != slacktest.DefaultTeamID {
			t.Errorf("chat.startStream calls %+v, want one for alice of the team", start)
		}

		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: "and tomorrow?", ThreadTS: asked})
		second := w.waitAnswer(b, general.ID, asked, "and tomorrow?")
		if !strings.HasPrefix(second, "[Hermes simulator · turn 2]") {
			t.Errorf("reply in the thread: %q, want the thread's session continued", second)
		}
		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: bob.ID, Text: "unrelated"})
		done := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "done"})
		w.waitAnswer(b, general.ID, done, "done")
		g.Stop()
		if n := b.Calls("just chatting") + b.Calls("unrelated"); n != 0 {
			t.Errorf("%d messages without a mention reached the agent", n)
		}
		if len(b.Turns()) != 3 {
			t.Errorf("%d turns, want 3", len(b.Turns()))
		}
	})
}

// With reply_in_thread off, a mention in a channel is answered in the
// channel, in its author's session there; a message in a thread is still
// answered in the thread.
func TestFlatRepliesAnswerInTheChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 20})
		opts := w.options()
		opts.FlatReplies = true
		g := w.start(b, opts)

		asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "first"})
		w.waitAnswer(b, general.ID, "", "first")
		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "second"})
		second := w.waitAnswer(b, general.ID, "", "second")
		if !strings.HasPrefix(second, "[Hermes simulator · turn 2]") {
			t.Errorf("the second mention's answer %q: alice's session in the channel was not kept", second)
		}
		if msgs := w.botMessages(general.ID, asked); len(msgs) != 0 {
			t.Errorf("the first mention's thread shows %+v, want nothing", msgs)
		}
		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "in a thread", ThreadTS: asked})
		w.waitAnswer(b, general.ID, asked, "in a thread")
		g.Stop()
		if src := b.Turns()[0].Source; src.ChatType != chat.Group || src.ThreadID != "" {
			t.Errorf("the agent was told the mention came from %+v, want the channel", src)
		}
	})
}

// Where Slack refuses its streaming to the app, the answer in a thread is
// posted and updated instead, and no stream is tried again.
func TestRefusedStreamingFallsBackToPostAndUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{RefuseStreaming: true})
		_, b := w.sim(sim.Options{TokensPerSecond: 20, AnswerTokens: 60})
		g := w.start(b, w.options())

		for i, q := range []string{"first question", "second question"} {
			asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + q})
			w.waitAnswer(b, general.ID, asked, q)
			msgs := w.botMessages(general.ID, asked)
			if len(msgs) != 1 || msgs[0].Streamed || msgs[0].Edits == 0 {
				t.Errorf("answer %d: the thread shows %+v, want one posted message, updated", i+1, msgs)
			}
		}
		g.Stop()
		if n := len(w.srv.CallsOf("chat.startStream")); n != 1 {
			t.Errorf("%d chat.startStream calls, want the one Slack refused", n)
		}
	})
}

// Every envelope is acknowledged within Slack's 3 s, after its message is
// journalled; an envelope Slack sends again (its ack came too late) is
// answered once.
func TestEnvelopesAreAckedAndRedeliveriesDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 20})
		a := &slowJournal{Adapter: w.adapter(w.options()), slow: "slow one", delay: 4 * time.Second}
		g := platformtest.StartGateway(t, platformtest.GatewayOptions(t, allowed), b, w.st, a, waitTimeout)

		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "quick one"})
		w.waitAnswer(b, aliceDM.ID, "", "quick one")
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "slow one"})
		w.waitAnswer(b, aliceDM.ID, "", "slow one")
		asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "in the channel"})
		w.waitAnswer(b, general.ID, asked, "in the channel")
		w.waitFor("every envelope acknowledged", func() bool { return w.srv.Pending() == 0 })
		g.Stop()

		retried := 0
		for _, e := range w.srv.Envelopes() {
			if e.Retry > 0 {
				retried++
			}
			if e.AckedAt.IsZero() {
				continue // given up on: Slack sent it again
			}
			if d := e.AckedAt.Sub(e.SentAt); d > 3*time.Second {
				t.Errorf("envelope %s acknowledged after %s", e.ID, d)
			}
		}
		if retried == 0 {
			t.Error("the slow message was not delivered again: the test tested nothing")
		}
		for _, q := range []string{"quick one", "slow one", "in the channel"} {
			if n := b.Calls(q); n != 1 {
				t.Errorf("%q reached the agent %d times", q, n)
			}
		}
		if n := len(w.botMessages(aliceDM.ID, "")); n != 2 {
			t.Errorf("the DM shows %d answers, want 2", n)
		}
	})
}

// slowJournal is the adapter with a journal that takes delay to take the
// message slow, the first time: Slack sends its envelope again meanwhile.
type slowJournal struct {
	*Adapter
	slow  string
	delay time.Duration
	once  sync.Once
}

func (s *slowJournal) Run(ctx context.Context, h platform.Handler) error {
	return s.Adapter.Run(ctx, func(ctx context.Context, in chat.Inbound) error {
		if in.Text == s.slow {
			s.once.Do(func() { time.Sleep(s.delay) })
		}
		return h(ctx, in)
	})
}

// A disconnect asked for while an answer streams: the client reconnects,
// the answer completes once, and the next message is answered once.
func TestDisconnectMidAnswerLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 10, AnswerTokens: 80})
		g := w.start(b, w.options())

		asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "long story"})
		w.waitFor("the answer to start", func() bool { return len(w.botMessages(general.ID, asked)) > 0 })
		w.srv.Disconnect("refresh_requested")
		w.waitFor("a new connection", func() bool { return w.srv.Connections() >= 2 })
		next := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "next"})
		w.waitAnswer(b, general.ID, asked, "long story")
		w.waitAnswer(b, general.ID, next, "next")
		w.srv.Disconnect("link_disabled")
		w.waitFor("a third connection", func() bool { return w.srv.Connections() >= 3 })
		third := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "third"})
		w.waitAnswer(b, general.ID, third, "third")
		g.Stop()
		for _, q := range []string{"long story", "next", "third"} {
			if n := b.Calls(q); n != 1 {
				t.Errorf("%q reached the agent %d times", q, n)
			}
		}
		for _, ts := range []string{asked, next, third} {
			if n := len(w.botMessages(general.ID, ts)); n != 1 {
				t.Errorf("thread %s shows %d answers, want 1", ts, n)
			}
		}
	})
}

// A 429 on the first update of an answer: nothing goes to Slack during the
// penalty (the fake fails the test for any call then), and the chat ends
// with the exact final answer.
func TestRateLimitOnTheFirstUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 20, AnswerTokens: 80})
		w.srv.RateLimitNth("chat.update", "", 1, 7*time.Second)
		g := w.start(b, w.options())

		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "hello"})
		w.waitAnswer(b, aliceDM.ID, "", "hello")
		g.Stop()
		penalties := w.srv.Penalties()
		if len(penalties) != 1 {
			t.Fatalf("penalties %+v, want the one forced", penalties)
		}
		for _, c := range w.srv.Calls() {
			if c.Method != "chat.update" && c.Method != "chat.postMessage" {
				continue
			}
			if p := penalties[0]; c.At.After(p.At) && c.At.Before(p.Until) {
				t.Errorf("%s at %s, during the penalty until %s", c.Method, c.At.Format("15:04:05.000"), p.Until.Format("15:04:05.000"))
			}
		}
		if msgs := w.botMessages(aliceDM.ID, ""); len(msgs) != 1 {
			t.Errorf("the DM shows %d messages, want one", len(msgs))
		}
	})
}

// An answer over Slack's length goes on in more messages, a code block
// that spans the cut closed and reopened, with nothing lost: both when
// posted and when streamed.
func TestLongAnswerIsSplitWithFencesBalanced(t *testing.T) {
	code := "```go\n" + strings.Repeat("fmt.Println(\"a line of code in a long block\")\n", 300) + "```\n"
	answer := strings.Repeat("Some prose before the code. ", 200) + "\n\n" + code + "\nThat is all."
	for _, tc := range []struct {
		name    string
		channel string
		thread  bool
	}{{"posted", aliceDM.ID, false}, {"streamed", general.ID, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, slacktest.Options{})
				b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 400, Every: 100 * time.Millisecond})
				g := w.start(b, w.options())
				text, thread := "tell me", ""
				if tc.thread {
					text = mention + text
				}
				ts := w.srv.Inject(slacktest.Incoming{Channel: tc.channel, User: alice.ID, Text: text})
				if tc.thread {
					thread = ts
				}
				w.waitFor("the whole answer", func() bool {
					msgs := w.botMessages(tc.channel, thread)
					return len(msgs) > 1 && strings.HasSuffix(msgs[len(msgs)-1].Text, "That is all.") && !msgs[len(msgs)-1].Streaming
				})
				g.Stop()
				msgs := w.botMessages(tc.channel, thread)
				var got strings.Builder
				for i, m := range msgs {
					if n := utf8.RuneCountInString(m.Text); n > maxText {
						t.Errorf("message %d has %d characters", i, n)
					}
					if fences := strings.Count(m.Text, "```"); fences%2 != 0 {
						t.Errorf("message %d has %d fence markers: a code block left open\n%s", i, fences, m.Text)
					}
					if m.Streaming {
						t.Errorf("message %d is still streaming", i)
					}
					got.WriteString(m.Text)
				}
				if lines := strings.Count(got.String(), "a line of code"); lines != 300 {
					t.Errorf("%d lines of code shown, want 300", lines)
				}
			})
		})
	}
}

// Only allowed users reach the agent; a stranger's DM and mention are
// dropped.
func TestUnauthorizedUserNeverReachesTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 10})
		g := w.start(b, w.options())
		strangerDM := slacktest.Channel{ID: "D0MALLORY01", User: stranger.ID}
		w.srv.AddChannel(strangerDM)
		w.srv.Inject(slacktest.Incoming{Channel: strangerDM.ID, User: stranger.ID, Text: "let me in"})
		w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: stranger.ID, Text: mention + "let me in too"})
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "hello"})
		w.waitAnswer(b, aliceDM.ID, "", "hello")
		w.waitFor("every envelope acknowledged", func() bool { return w.srv.Pending() == 0 })
		g.Stop()
		if turns := b.Turns(); len(turns) != 1 || turns[0].Message != "hello" {
			t.Errorf("the agent got %+v, want alice's message only", turns)
		}
		if n := len(w.srv.BotMessages(general.ID)); n != 0 {
			t.Errorf("the bot answered the stranger in the channel %d times", n)
		}
	})
}

// Nothing the agent writes becomes a mention of everyone: not <!channel>,
// not @here.
func TestMassMentionsAreNeverSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		answer := "Attention <!channel> and <!here>, also @everyone & @here: <@U0BOB000001> <https://example.com/?a=1&b=2> [docs](https://example.com/docs)"
		b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 7, Every: 50 * time.Millisecond})
		g := w.start(b, w.options())
		for _, in := range []slacktest.Incoming{
			{Channel: general.ID, User: alice.ID, Text: mention + "announce it"},
			{Channel: aliceDM.ID, User: alice.ID, Text: "announce it here"},
		} {
			w.srv.Inject(in)
		}
		w.waitFor("both answers", func() bool {
			return len(w.srv.BotMessages(general.ID)) == 1 && len(w.srv.BotMessages(aliceDM.ID)) == 1 &&
				!w.srv.BotMessages(general.ID)[0].Streaming && strings.HasSuffix(w.srv.BotMessages(aliceDM.ID)[0].Text, "(https://example.com/docs)")
		})
		g.Stop()
		for _, ch := range []string{general.ID, aliceDM.ID} {
			if m := w.srv.Mentions(ch); len(m) != 0 {
				t.Errorf("%s: the bot's messages mention %v", ch, m)
			}
			if got := w.srv.BotMessages(ch)[0].Text; got != render(answer) {
				t.Errorf("%s shows %q, want %q", ch, got, render(answer))
			}
		}
		if !strings.Contains(render(answer), "https://example.com/?a=1&amp;b=2") || !strings.Contains(render(answer), "[docs](https://example.com/docs)") {
			t.Errorf("links were not kept: %q", render(answer))
		}
	})
}

// While a tool runs, the thread's status shows it (never the text of the
// stream), then the agent is thinking again.
func TestToolProgressShowsInTheThreadStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{FirstTokenDelay: 4 * time.Second, ToolProgress: true, Tools: []string{"web_search"}, TokensPerSecond: 20, AnswerTokens: 30})
		g := w.start(b, w.options())
		asked := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: alice.ID, Text: mention + "search it"})
		final := w.waitAnswer(b, general.ID, asked, "search it")
		g.Stop()
		var texts []string
		for _, s := range w.srv.Statuses(general.ID, asked) {
			texts = append(texts, s.Text)
		}
		if !slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, "web_search") || strings.Contains(s, "search") }) || texts[0] != thinking {
			t.Errorf("the thread's status went %q, want thinking, then the tool", texts)
		}
		if m := w.botMessages(general.ID, asked); len(m) != 1 || m[0].Text != render(final) {
			t.Errorf("the stream shows %+v, want only the answer", m)
		}
	})
}

// Commands typed as text (/new, !new) and the app's slash command act on
// the conversation: a new session starts, and the next answer is turn 1.
func TestCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 10})
		g := w.start(b, w.options())

		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "one"})
		w.waitAnswer(b, aliceDM.ID, "", "one")
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "!new"})
		w.waitFor("the new session's notice", func() bool { return lastText(w.botMessages(aliceDM.ID, "")) == render(texts.NewSession) })
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "two"})
		if got := w.waitAnswer(b, aliceDM.ID, "", "two"); !strings.HasPrefix(got, "[Hermes simulator · turn 1]") {
			t.Errorf("after !new: %q, want a new session", got)
		}

		w.srv.InjectSlashCommand(slacktest.SlashCommand{Command: "/herald", Text: "new", Channel: aliceDM.ID, User: alice.ID})
		w.waitFor("the slash command's notice", func() bool {
			msgs := w.botMessages(aliceDM.ID, "")
			return len(msgs) == 4 && msgs[3].Text == render(texts.NewSession)
		})
		w.srv.InjectSlashCommand(slacktest.SlashCommand{Command: "/herald", Text: "three", Channel: aliceDM.ID, User: alice.ID})
		if got := w.waitAnswer(b, aliceDM.ID, "", "three"); !strings.HasPrefix(got, "[Hermes simulator · turn 1]") {
			t.Errorf("after /herald new: %q, want a new session", got)
		}
		w.waitFor("every envelope acknowledged", func() bool { return w.srv.Pending() == 0 })
		g.Stop()
		for _, e := range w.srv.Envelopes() {
			if e.Type == "slash_commands" && (e.AckedAt.IsZero() || e.AckedAt.Sub(e.SentAt) > 3*time.Second) {
				t.Errorf("slash command envelope %+v not acknowledged within 3 s", e)
			}
		}
	})
}

func lastText(msgs []slacktest.Message) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[len(msgs)-1].Text
}

// An image shared in a DM reaches the agent as an image, fetched with the
// bot token; a file that is not an image is named in the text.
func TestSharedImageReachesTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		_, b := w.sim(sim.Options{TokensPerSecond: 40, AnswerTokens: 10})
		g := w.start(b, w.options())
		png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde")
		w.srv.Inject(slacktest.Incoming{Channel: aliceDM.ID, User: alice.ID, Text: "what is this?", Files: []slacktest.File{
			{Name: "dot.png", MimeType: "image/png", Data: png},
			{Name: "notes.pdf", MimeType: "application/pdf", Data: []byte("%PDF-1.4")},
		}})
		w.waitFor("a turn", func() bool { return len(b.Turns()) == 1 })
		g.Stop()
		turn := b.Turns()[0]
		if len(turn.Images) != 1 || string(turn.Images[0].Data) != string(png) || turn.Images[0].MIMEType != "image/png" {
			t.Errorf("the agent got images %+v, want the PNG", turn.Images)
		}
		if !strings.HasPrefix(turn.Message, "what is this?") || !strings.Contains(turn.Message, "notes.pdf") {
			t.Errorf("the agent got %q, want the text and a note naming the PDF", turn.Message)
		}
	})
}

// A refused token stops Run with an error that names the variable.
func TestRefusedTokensStopRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(*Options)
		want string
	}{
		{"bot token", func(o *Options) { o.BotToken = "xoxb-0-revoked-token" }, "slack: checking SLACK_BOT_TOKEN (auth.test): invalid_auth: the token is not valid (revoked, or from another app)"},
		{"app token", func(o *Options) { o.AppToken = "xapp-1-A0-revoked-token" }, "slack: opening Socket Mode with SLACK_APP_TOKEN (apps.connections.open): invalid_auth: the token is not valid (revoked, or from another app)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, slacktest.Options{})
				opts := w.options()
				tc.opts(&opts)
				err := w.adapter(opts).Run(t.Context(), func(context.Context, chat.Inbound) error { return nil })
				if err == nil || err.Error() != tc.want {
					t.Errorf("Run: %v, want %q", err, tc.want)
				}
				if err != nil && (strings.Contains(err.Error(), opts.BotToken) || strings.Contains(err.Error(), opts.AppToken)) {
					t.Errorf("the error shows a token: %v", err)
				}
			})
		})
	}
}
