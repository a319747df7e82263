package telegram

// These tests drive the real gateway (runner, streaming delivery, SQLite
// store) with the adapter against the fake Bot API, and the Hermes API
// simulator or a scripted backend behind.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

// In a private chat the answer is previewed with drafts, then sent once;
// "typing" shows while the agent thinks; the commands are registered.
func TestPrivateChatStreamsDraftsThenOneMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		_, hb := newSim(t, sim.Options{FirstTokenDelay: 1500 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 60})
		b := platformtest.Count(hb)
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})

		want := []telegramtest.BotCommand{
			{Command: "new", Description: "Start a new conversation"},
			{Command: "reset", Description: "Start a new conversation (same as /new)"},
			{Command: "stop", Description: "Stop the answer being written"},
			{Command: "status", Description: "Session, agent server and uptime"},
			{Command: "sethome", Description: "Make this chat the home channel for the agent's own messages"},
			{Command: "help", Description: "List the commands"},
		}
		if got := srv.Commands(); !slices.Equal(got, want) {
			t.Errorf("setMyCommands registered %v, want %v", got, want)
		}

		asked := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "hello"})
		final := waitAnswer(t, srv, b, aliceDM.ID, "hello")
		g.stop()

		if !strings.HasPrefix(final, `[Hermes simulator · turn 1] You said: "hello".`) {
			t.Errorf("final answer %q is not the simulator's", final)
		}
		msgs := srv.BotMessages(aliceDM.ID)
		if len(msgs) != 1 || msgs[0].Text != final || msgs[0].ReplyTo != asked.MessageID {
			t.Fatalf("the chat shows %+v, want one message %q replying to message %d (reply_to_mode first)", msgs, final, asked.MessageID)
		}
		calls := srv.CallsTo(aliceDM.ID)
		var drafts, sends, edits, typingBeforeText int
		shown := false
		for _, c := range calls {
			switch c.Method {
			case "sendMessageDraft":
				drafts++
				shown = true
			case "sendMessage":
				sends++
				shown = true
			case "editMessageText":
				edits++
			case "sendChatAction":
				if c.Params["action"] != "typing" {
					t.Errorf("chat action %q, want typing", c.Params["action"])
				}
				if !shown {
					typingBeforeText++
				}
			}
		}
		if drafts < 2 || sends != 1 || edits != 0 {
			t.Errorf("%d drafts, %d sends, %d edits; want drafts, then one send, no edit: %s", drafts, sends, edits, methods(calls))
		}
		if typingBeforeText == 0 {
			t.Errorf("no typing shown while waiting for the first text: %s", methods(calls))
		}
		if last := calls[len(calls)-1]; last.Method != "sendMessage" || last.Params["parse_mode"] != "HTML" {
			t.Errorf("the last call is %s (parse_mode %q), want the final sendMessage in HTML", last.Method, last.Params["parse_mode"])
		}
		if d := srv.Drafts(aliceDM.ID); len(d) != 0 {
			t.Errorf("drafts still shown after the final message: %v", d)
		}
		checkPenalties(t, srv, aliceDM.ID)
	})
}

// In groups the bot answers only when addressed: a mention, a reply to
// it, or a command; answers are edited in place and reply to the message.
func TestGroupAnswersOnlyWhenAddressed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		simSrv, hb := newSim(t, sim.Options{TokensPerSecond: 25, AnswerTokens: 50})
		b := platformtest.Count(hb)
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})

		// Not addressed: journalled, not answered.
		for _, text := range []string{"hello everyone", "ask @someone_else", "/status@other_bot"} {
			in := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: text})
			waitTaken(t, srv, in)
		}
		if calls := srv.CallsTo(group.ID); len(calls) != 0 {
			t.Fatalf("the bot spoke without being addressed: %s", methods(calls))
		}
		if n := simSrv.Stats().Requests; n != 0 {
			t.Fatalf("%d requests upstream for messages not addressed to the bot", n)
		}

		// A mention.
		asked := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "@herald_bot what is up?"})
		final := waitAnswer(t, srv, b, group.ID, "@herald_bot what is up?")
		msgs := srv.BotMessages(group.ID)
		if len(msgs) != 1 || msgs[0].Text != final || msgs[0].ReplyTo != asked.MessageID {
			t.Fatalf("the chat shows %+v, want one answer %q replying to message %d", msgs, final, asked.MessageID)
		}
		answer := msgs[0].ID
		calls := srv.CallsTo(group.ID)
		if n := len(srv.CallsOf("sendMessageDraft")); n != 0 {
			t.Errorf("%d drafts in a group", n)
		}
		edits := 0
		for _, c := range calls {
			if c.Method == "editMessageText" && c.Status == 200 {
				edits++
			}
		}
		if edits == 0 {
			t.Errorf("the answer was not streamed by edits: %s", methods(calls))
		}

		// A reply to the bot's message, without a mention.
		srv.Inject(telegramtest.Incoming{Chat: group, From: bob, Text: "and then?", ReplyTo: answer})
		final = waitAnswer(t, srv, b, group.ID, "and then?")
		if !strings.Contains(final, `You said: "and then?"`) {
			t.Errorf("answer to the reply: %q", final)
		}

		// A command addressed to this bot: the gateway answers it itself.
		before := len(srv.BotMessages(group.ID))
		srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "/status@herald_bot"})
		waitFor(t, srv, "the status", func() bool {
			msgs := srv.BotMessages(group.ID)
			return len(msgs) > before && strings.Contains(msgs[len(msgs)-1].Text, "Status")
		})
		status := srv.BotMessages(group.ID)[before]
		if !slices.ContainsFunc(status.Entities, func(e telegramtest.Entity) bool { return e.Type == "bold" }) {
			t.Errorf("the status's markdown was not rendered: %q %+v", status.Text, status.Entities)
		}

		// A forum topic is a thread: the answer goes into it.
		srv.AddChat(forum)
		srv.Inject(telegramtest.Incoming{Chat: forum, From: alice, Text: "@herald_bot in a topic", ThreadID: 77})
		waitAnswer(t, srv, b, forum.ID, "@herald_bot in a topic")
		g.stop()
		for _, m := range srv.BotMessages(forum.ID) {
			if m.ThreadID != 77 {
				t.Errorf("answer %q went to thread %d, want 77", m.Text, m.ThreadID)
			}
		}
		for _, in := range g.ad.inbound() {
			if in.Text == "@herald_bot in a topic" && (in.Source.ChatType != chat.Thread || in.Source.ThreadID != "77") {
				t.Errorf("topic message has source %+v, want a thread 77", in.Source)
			}
		}
		if n := b.Calls("hello everyone") + b.Calls("ask @someone_else") + b.Calls("/status@other_bot"); n != 0 {
			t.Errorf("%d turns for messages not addressed to the bot", n)
		}
		checkPenalties(t, srv, group.ID)
	})
}

// A 429 with retry_after 3 on the first edit: nothing goes to the chat
// for three seconds, and the answer still ends complete, exactly once.
func TestFloodWaitIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		_, hb := newSim(t, sim.Options{TokensPerSecond: 15, AnswerTokens: 80})
		b := platformtest.Count(hb)
		srv.AddChat(group)
		srv.RateLimitNth(group.ID, "editMessageText", 1, 3)
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})

		srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "@herald_bot tell me a story"})
		final := waitAnswer(t, srv, b, group.ID, "@herald_bot tell me a story")
		g.stop()

		penalties := srv.Penalties(group.ID)
		if len(penalties) == 0 {
			t.Fatal("the fake never rate limited the chat")
		}
		if d := penalties[0].Until.Sub(penalties[0].From); d != 3*time.Second {
			t.Errorf("penalty of %s, want 3s", d)
		}
		checkPenalties(t, srv, group.ID)
		limited := 0
		for _, c := range srv.CallsTo(group.ID) {
			if c.Status == 429 {
				limited++
			}
		}
		if limited != 1 {
			t.Errorf("%d calls answered 429, want only the forced one: %s", limited, methods(srv.CallsTo(group.ID)))
		}
		msgs := srv.BotMessages(group.ID)
		if len(msgs) != 1 || msgs[0].Text != final {
			t.Fatalf("the chat shows %d messages %+v, want exactly one: %q", len(msgs), msgs, final)
		}
		sends := 0
		for _, c := range srv.CallsOf("sendMessage") {
			if c.Status == 200 {
				sends++
			}
		}
		if sends != 1 {
			t.Errorf("%d messages sent, want 1", sends)
		}
	})
}

// longAnswer is over 10,000 characters with a code block across the
// split points; its visible text is the markdown without the fence lines.
func longAnswer() (md, visible string) {
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, "Paragraph %d: %s\n\n", i, strings.Repeat("lorem ipsum dolor sit amet ", 10))
	}
	b.WriteString("```go\n")
	for i := range 160 {
		fmt.Fprintf(&b, "fmt.Println(\"line %03d\") // with some padding\n", i)
	}
	b.WriteString("```\n\n")
	for i := range 6 {
		fmt.Fprintf(&b, "Closing %d: %s\n\n", i, strings.Repeat("consectetur adipiscing ", 10))
	}
	md = strings.TrimSpace(b.String())
	visible = strings.NewReplacer("```go\n", "", "```\n", "").Replace(md)
	return md, visible
}

// squash makes texts comparable across message boundaries: whitespace
// runs become one space.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// An answer over 10,000 characters: every message within 4096 UTF-16
// units, the code block formatted as code in every message it spans, and
// all of the text there, in order, once.
func TestLongAnswerIsSplitWithFencesBalanced(t *testing.T) {
	md, visible := longAnswer()
	if len(md) <= 10000 {
		t.Fatalf("the answer is only %d characters", len(md))
	}
	for _, tc := range []struct {
		name string
		chat telegramtest.Chat
		text string
	}{
		{"group with edits", group, "@herald_bot write a lot"},
		{"private with drafts", aliceDM, "write a lot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t)
				srv.AddChat(tc.chat)
				b := platformtest.Count(platformtest.Scripted{Answer: md, Piece: 60, Every: 5 * time.Millisecond})
				g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})
				srv.Inject(telegramtest.Incoming{Chat: tc.chat, From: alice, Text: tc.text})
				waitFor(t, srv, "the whole answer", func() bool {
					_, done := b.Final(tc.text)
					var texts []string
					for _, m := range srv.BotMessages(tc.chat.ID) {
						texts = append(texts, m.Text)
					}
					return done && squash(strings.Join(texts, "\n")) == squash(visible)
				})
				g.stop()

				msgs := srv.BotMessages(tc.chat.ID)
				if len(msgs) < 3 {
					t.Errorf("%d messages for %d characters", len(msgs), len(md))
				}
				codeLines := 0
				for i, m := range msgs {
					if n := telegramtest.UTF16Len(m.Text); n > MaxLength {
						t.Errorf("message %d has %d UTF-16 units", i, n)
					}
					if strings.Contains(m.Text, "```") {
						t.Errorf("message %d shows a raw fence: the code was not rendered", i)
					}
					// Every code line a message holds is inside a go code block.
					for _, line := range strings.Split(m.Text, "\n") {
						if !strings.HasPrefix(line, "fmt.Println(") {
							continue
						}
						codeLines++
						at := telegramtest.UTF16Len(m.Text[:strings.Index(m.Text, line)])
						if !slices.ContainsFunc(m.Entities, func(e telegramtest.Entity) bool {
							return e.Type == "pre" && e.Language == "go" && e.Offset <= at && at < e.Offset+e.Length
						}) {
							t.Errorf("message %d: code line %q is not in a go code block", i, line)
						}
					}
				}
				if codeLines != 160 {
					t.Errorf("%d code lines shown, want 160", codeLines)
				}
				checkPenalties(t, srv, tc.chat.ID)
			})
		})
	}
}

// Emoji and other characters outside the BMP take two UTF-16 units: the
// split counts them so, and never cuts one in half.
func TestAstralCharactersAtTheSplitPoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := "x" + strings.Repeat("😀🎉𝔘𠜎", 1500) // 1 + 12,000 units, no space to cut at
		srv := newServer(t)
		srv.AddChat(group)
		b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 200, Every: 5 * time.Millisecond})
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})
		srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "@herald_bot emoji please"})
		waitFor(t, srv, "the whole answer", func() bool {
			_, done := b.Final("@herald_bot emoji please")
			return done && strings.Join(srv.BotTexts(group.ID), "") == answer
		})
		g.stop()
		msgs := srv.BotMessages(group.ID)
		if len(msgs) < 3 {
			t.Errorf("%d messages for 12,001 UTF-16 units", len(msgs))
		}
		for i, m := range msgs {
			if n := telegramtest.UTF16Len(m.Text); n > MaxLength {
				t.Errorf("message %d has %d UTF-16 units", i, n)
			}
			if !utf8.ValidString(m.Text) || strings.ContainsRune(m.Text, utf8.RuneError) {
				t.Errorf("message %d has a broken character", i)
			}
		}
		checkPenalties(t, srv, group.ID)
	})
}

// When Telegram cannot parse the formatting, the same text goes again as
// plain text: nothing is lost.
func TestParseErrorFallsBackToPlainText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := "Here is **bold** and `code` <for> you."
		srv := newServer(t)
		srv.AddChat(aliceDM)
		srv.ParseErrorNext(aliceDM.ID, "sendMessage")
		b := platformtest.Count(platformtest.Scripted{Answer: answer, Piece: 8, Every: 5 * time.Millisecond})
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{})
		srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "format something"})
		waitFor(t, srv, "the answer", func() bool { return len(srv.BotMessages(aliceDM.ID)) > 0 })
		g.stop()

		msgs := srv.BotMessages(aliceDM.ID)
		if len(msgs) != 1 || msgs[0].Text != answer || msgs[0].ParseMode != "" {
			t.Fatalf("the chat shows %+v, want the answer once as plain text %q", msgs, answer)
		}
		sends := srv.CallsOf("sendMessage")
		if len(sends) != 2 || sends[0].Status != 400 || sends[0].Params["parse_mode"] != "HTML" ||
			sends[1].Status != 200 || sends[1].Params["parse_mode"] != "" {
			t.Errorf("sendMessage calls: %s; want a refused HTML one, then plain text", methods(sends))
		}
	})
}

// Stopping between updates loses none and processes none twice: an
// update fetched but not journalled before the stop comes again; the
// offset saved is past the journalled ones only; updates Telegram sends
// again are dropped as duplicates.
func TestRestartLosesNothingAndRepeatsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		st := platformtest.Store(t)
		_, hb := newSim(t, sim.Options{TokensPerSecond: 50, AnswerTokens: 10})
		b := platformtest.Count(hb)

		texts := []string{"first", "second", "third", "fourth", "fifth"}
		injected := map[string]telegramtest.Injected{}
		inject := func(text string) {
			injected[text] = srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: text})
		}

		// Run 1 takes "first" to "third"; "fourth" comes in the same batch as
		// "third", and the process "dies" before journalling it.
		var g1 *gw
		crashed := make(chan struct{})
		// Queued, not interrupting: every message must get its own answer.
		g1 = startGateway(t, srv, st, b, gwConfig{busyMode: "queue", hook: func(ctx context.Context, in chat.Inbound) error {
			if in.Text != "fourth" {
				return nil
			}
			defer close(crashed)
			// Let the answer to "third" finish first, so that its turn is
			// complete when the gateway stops.
			wctx, cancel := context.WithTimeout(ctx, waitTimeout)
			defer cancel()
			_ = srv.WaitFor(wctx, func() bool {
				final, ok := b.Final("third")
				msgs := srv.BotMessages(aliceDM.ID)
				return ok && len(msgs) > 0 && msgs[len(msgs)-1].Text == final
			})
			g1.cancel()
			return errCrash
		}})
		inject("first")
		waitAnswer(t, srv, b, aliceDM.ID, "first")
		inject("second")
		waitAnswer(t, srv, b, aliceDM.ID, "second")
		inject("third")
		inject("fourth")
		select {
		case <-crashed:
		case <-time.After(waitTimeout):
			t.Fatal("the fourth message never came")
		}
		g1.stop()

		next := injected["fourth"].UpdateID
		if v, _, _ := st.State(t.Context(), g1.ad.stateKey); v != strconv.FormatInt(next, 10) {
			t.Errorf("saved offset %q, want %d: past the journalled updates and no further", v, next)
		}
		if c := srv.Confirmed(); c > next {
			t.Errorf("Telegram was told to forget update %d, which was never journalled (offset %d)", next, c)
		}

		// While Herald is down, another message comes; Telegram also sends
		// the first three again (as after a lost offset).
		inject("fifth")
		if err := st.SetState(t.Context(), g1.ad.stateKey, strconv.FormatInt(injected["first"].UpdateID, 10)); err != nil {
			t.Fatal(err)
		}
		for _, text := range texts[:3] {
			srv.Redeliver(injected[text].UpdateID)
		}

		// A restart takes a moment, in which the chat's flood budget
		// refills: the new process starts with its budgets full, and the
		// fake holds it to Telegram's.
		time.Sleep(3 * time.Second)
		g2 := startGateway(t, srv, st, b, gwConfig{busyMode: "queue"})
		waitAnswer(t, srv, b, aliceDM.ID, "fourth")
		waitAnswer(t, srv, b, aliceDM.ID, "fifth")
		waitTaken(t, srv, injected["fifth"])

		// The updates sent again reached the gateway, which dropped them.
		redelivered := 0
		for _, in := range g2.ad.inbound() {
			if slices.Contains(texts[:3], in.Text) {
				redelivered++
			}
		}
		if redelivered != 3 {
			t.Errorf("%d of the 3 updates sent again reached the gateway", redelivered)
		}
		for _, text := range texts {
			if n := b.Calls(text); n != 1 {
				t.Errorf("%q went to the agent %d times, want once", text, n)
			}
		}
		var answers []string
		for _, m := range srv.BotMessages(aliceDM.ID) {
			answers = append(answers, m.Text)
		}
		if len(answers) != len(texts) {
			t.Errorf("the chat shows %d answers, want %d: %q", len(answers), len(texts), answers)
		}
		for i, text := range texts {
			if i < len(answers) && !strings.Contains(answers[i], `You said: "`+text+`"`) {
				t.Errorf("answer %d is %q, want the answer to %q", i, answers[i], text)
			}
		}
	})
}

// A user not in the allowlist gets nothing, and nothing goes upstream.
func TestUnauthorizedUserGetsNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		simSrv, hb := newSim(t, sim.Options{})
		g := startGateway(t, srv, platformtest.Store(t), platformtest.Count(hb), gwConfig{})
		dm := telegramtest.Chat{ID: stranger.ID, Type: telegramtest.Private, FirstName: stranger.FirstName}
		in := srv.Inject(telegramtest.Incoming{Chat: dm, From: stranger, Text: "let me in"})
		waitTaken(t, srv, in)
		g.stop()
		if n := simSrv.Stats().Requests; n != 0 {
			t.Errorf("%d requests went upstream for a user not allowed", n)
		}
		if calls := srv.CallsTo(dm.ID); len(calls) != 0 {
			t.Errorf("the bot answered a user not allowed: %s", methods(calls))
		}
	})
}

// pngBytes is the start of a PNG file, enough to be recognised as one.
var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 3000)...)

// A photo's largest size is fetched with getFile and passed to the agent
// as an image; a size over the cap is skipped for the largest one that fits.
func TestPhotoIsPassedAsImage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		_, hb := newSim(t, sim.Options{TokensPerSecond: 50, AnswerTokens: 5})
		b := platformtest.Count(hb)
		g := startGateway(t, srv, platformtest.Store(t), b, gwConfig{adapter: func(o *Options) { o.MaxMediaBytes = 2000 }})

		small := pngBytes[:1500]
		in := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "what is this?", Photo: small})
		final := waitAnswer(t, srv, b, aliceDM.ID, "what is this?")
		big := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "and this?", Photo: pngBytes})
		waitAnswer(t, srv, b, aliceDM.ID, "and this?")
		g.stop()

		// The agent got the image: the simulator counts it in its answer.
		if !strings.Contains(final, `You said: "what is this?" (+1 image).`) {
			t.Errorf("answer %q, want the simulator to have seen one image", final)
		}
		turn := b.Turns()[0]
		if len(turn.Images) != 1 || turn.Images[0].MIMEType != "image/png" || string(turn.Images[0].Data) != string(small) {
			t.Errorf("the backend got images %v, want the photo as image/png", summary(turn.Images))
		}

		taken := g.ad.inbound()
		if len(taken) != 2 {
			t.Fatalf("%d messages taken, want 2", len(taken))
		}
		att := taken[0].Attachments
		if len(att) != 1 || att[0].Kind != "image" || att[0].MIMEType != "image/png" || string(att[0].Data) != string(small) {
			t.Errorf("journalled attachments %v, want the photo as image/png", summary(att))
		}
		gets := srv.CallsOf("getFile")
		if len(gets) < 1 || gets[0].Params["file_id"] != in.PhotoFileID {
			t.Errorf("getFile calls %+v, want the largest size %s first", gets, in.PhotoFileID)
		}
		if n := len(srv.CallsOf("download")); n != 2 {
			t.Errorf("%d downloads, want one per photo", n)
		}
		att = taken[1].Attachments
		if len(att) != 1 || len(att[0].Data) >= len(pngBytes) || len(att[0].Data) > 2000 {
			t.Errorf("attachments %v, want a size within the 2000-byte cap", summary(att))
		}
		for _, c := range gets {
			if c.Params["file_id"] == big.PhotoFileID {
				t.Error("the size over the cap was fetched")
			}
		}
	})
}

func summary(atts []chat.Attachment) []string {
	var out []string
	for _, a := range atts {
		out = append(out, fmt.Sprintf("%s %s %q %d bytes", a.Kind, a.MIMEType, a.Name, len(a.Data)))
	}
	return out
}

// timed is a backend that writes its answer in two halves, a second
// apart, and notes when it began and ended.
type timed struct {
	mu         sync.Mutex
	began, end time.Time
}

func (b *timed) Name() string { return "timed" }

func (b *timed) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	b.mu.Lock()
	b.began = time.Now()
	b.mu.Unlock()
	emit(agent.Event{Kind: agent.EventDelta, Text: "Hello there, "})
	time.Sleep(time.Second)
	emit(agent.Event{Kind: agent.EventDelta, Text: "how are you today?"})
	b.mu.Lock()
	b.end = time.Now()
	b.mu.Unlock()
	text := "Hello there, how are you today?"
	return agent.Result{FinalResponse: text, Text: text, SessionID: turn.SessionID}
}

// Within Telegram's flood limits a short answer's first text shows the
// moment the agent writes it, and its final text the moment the agent
// ends: no interval is waited, a token is held back for the end. (In the
// bubble time is exact: "the moment" is the same instant.)
func TestShortAnswerShowsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		chat         telegramtest.Chat
		text         string
		first, final string // the methods that show the first and the final text
	}{
		{"private chat", aliceDM, "hi", "sendMessageDraft", "sendMessage"},
		{"group", group, "@herald_bot hi", "sendMessage", "editMessageText"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t)
				srv.AddChat(tc.chat)
				b := &timed{}
				startGateway(t, srv, platformtest.Store(t), b, gwConfig{})
				srv.Inject(telegramtest.Incoming{Chat: tc.chat, From: alice, Text: tc.text})
				waitFor(t, srv, "the final text", func() bool {
					msgs := srv.BotMessages(tc.chat.ID)
					return len(msgs) == 1 && msgs[0].Text == "Hello there, how are you today?"
				})
				var shows []telegramtest.Call
				for _, c := range srv.CallsTo(tc.chat.ID) {
					if c.Status == 200 && c.Method != "sendChatAction" {
						shows = append(shows, c)
					}
				}
				if len(shows) < 2 || shows[0].Method != tc.first || shows[len(shows)-1].Method != tc.final {
					t.Fatalf("calls %s; want %s first and %s last", methods(shows), tc.first, tc.final)
				}
				if at := shows[0].At; !at.Equal(b.began) {
					t.Errorf("the first text showed %v after the agent wrote it", at.Sub(b.began))
				}
				if at := shows[len(shows)-1].At; !at.Equal(b.end) {
					t.Errorf("the final text showed %v after the agent's end", at.Sub(b.end))
				}
			})
		})
	}
}

// TELEGRAM_REACTIONS marks the message being answered: 👀 while the answer
// is written, then 👍 once it is done, or 👎 when the agent failed.
func TestReactions(t *testing.T) {
	for _, c := range []struct {
		name string
		opts sim.Options
		want string
	}{{"done", sim.Options{}, "👍"}, {"failed", sim.Options{AgentError: true}, "👎"}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t)
				srv.AddChat(aliceDM)
				_, hb := newSim(t, c.opts)
				b := platformtest.Count(hb)
				startGateway(t, srv, platformtest.Store(t), b, gwConfig{adapter: func(o *Options) { o.Reactions = true }})
				asked := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "react"})
				waitFor(t, srv, "the reaction "+c.want, func() bool {
					for _, m := range srv.Messages(aliceDM.ID) {
						if m.ID == asked.MessageID {
							return m.Reaction == c.want
						}
					}
					return false
				})
				var seen []string
				for _, call := range srv.CallsOf("setMessageReaction") {
					seen = append(seen, call.Params["reaction"])
				}
				if len(seen) != 2 || !strings.Contains(seen[0], "👀") || len(srv.Violations()) != 0 {
					t.Errorf("reactions set %q (violations %v), want 👀 then %s", seen, srv.Violations(), c.want)
				}
			})
		})
	}
}
