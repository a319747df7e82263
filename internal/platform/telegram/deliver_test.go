package telegram

// These tests deliver the agent's own messages (a scheduled job's report)
// through the real gateway's outbox to the fake Bot API: to the home
// chat, to a chat a message came from, paced as answers are.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/texts"
)

// homeTopic is the forum topic of the tests' home chat.
const homeTopic = 17

// chatOf is a chat's id as the gateway names it.
func chatOf(c telegramtest.Chat) string { return strconv.FormatInt(c.ID, 10) }

// startDelivering runs the gateway as startGateway does, with the home
// chat of the adapter's settings (none when home.Chat is empty) wired into
// the gateway's options as the app wires it, and gives access a say over
// the gateway's options; it returns the runner too, to deliver with.
func startDelivering(t *testing.T, srv *telegramtest.Server, home platform.Home, access func(*gateway.Options)) (*gw, *gateway.Runner) {
	t.Helper()
	opts := Options{Token: srv.Token, BaseURL: srv.URL, MaxMediaBytes: 5 << 20, RequireMention: true, HomeChannel: home}
	st := platformtest.Store(t)
	a, err := New(opts, platform.Deps{State: st, Logger: platformtest.Logger(t), HTTPClient: network(t).Client()})
	if err != nil {
		t.Fatal(err)
	}
	ad := &recording{Adapter: a}
	gopts := platformtest.GatewayOptions(t, allowed)
	if h, ok := opts.Home(); ok {
		gopts.Homes = map[string]chat.Target{Name: h}
	}
	if access != nil {
		access(&gopts)
	}
	backend := platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond}
	run := platformtest.StartGateway(t, gopts, backend, st, ad, waitTimeout)
	return &gw{ad: ad, stop: run.Stop, cancel: run.Cancel, ready: run.Ready}, run.Runner
}

// settled returns a delivery as it stands once the bubble is idle: every
// call the gateway made has had its answer, and the outcome is recorded.
// (Telegram's messages are never left open to seal: once the fake shows a
// delivery's last message, its send waits on no timer before it records
// the outcome, so an idle bubble means a recorded one.)
func settled(t *testing.T, r *gateway.Runner, id int64) store.Delivery {
	t.Helper()
	synctest.Wait()
	d, err := r.DeliveryState(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkSent fails the test unless the delivery has one send, sent to the
// chat (and topic, 0 for none) as the messages ids.
func checkSent(t *testing.T, d store.Delivery, chatID string, thread int, ids ...int) {
	t.Helper()
	var want []string
	for _, id := range ids {
		want = append(want, strconv.Itoa(id))
	}
	topic := ""
	if thread != 0 {
		topic = strconv.Itoa(thread)
	}
	platformtest.CheckSent(t, d, Name, chatID, topic, want...)
}

// hasEntity reports whether a message shows the part of its text of that
// type.
func hasEntity(m telegramtest.Msg, typ, part string) bool {
	i := strings.Index(m.Text, part)
	if i < 0 {
		return false
	}
	at, n := telegramtest.UTF16Len(m.Text[:i]), telegramtest.UTF16Len(part)
	return slices.ContainsFunc(m.Entities, func(e telegramtest.Entity) bool {
		return e.Type == typ && e.Offset == at && e.Length == n
	})
}

// The home chat of the settings (a forum topic) gets what is delivered to
// "telegram" and to "home": in its topic, rendered from markdown, replying
// to nobody; the sends end sent, with the messages' ids.
func TestDeliveryToTheHomeChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		// The topic exists: someone wrote in it (the fake knows a forum's
		// topics by their messages). Not to the bot: it does not answer.
		opened := srv.Inject(telegramtest.Incoming{Chat: forum, From: bob, Text: "the reports go here", ThreadID: homeTopic})
		g, r := startDelivering(t, srv, platform.Home{Chat: chatOf(forum), Thread: strconv.Itoa(homeTopic), Name: "Reports"}, nil)
		waitTaken(t, srv, opened)

		first := platformtest.Deliver(t, r, "nightly-1", "telegram", "The **nightly** build is _green_.")
		if len(first.Sends) != 1 || first.Sends[0].Target.ChatID != chatOf(forum) || first.Sends[0].Target.ThreadID != "17" {
			t.Errorf("the delivery to telegram was journalled for %+v, want the home topic", first.Sends)
		}
		second := platformtest.Deliver(t, r, "nightly-2", "home", "Run `make check` again.")
		waitFor(t, srv, "both deliveries", func() bool { return len(srv.BotMessages(forum.ID)) == 2 })

		msgs := srv.BotMessages(forum.ID)
		if m := msgs[0]; m.Text != "The nightly build is green." || !hasEntity(m, "bold", "nightly") || !hasEntity(m, "italic", "green") ||
			m.ParseMode != "HTML" || m.ThreadID != homeTopic || m.ReplyTo != 0 {
			t.Errorf("the first delivery shows as %+v, want \"The nightly build is green.\" with nightly bold and green italic, in topic %d", m, homeTopic)
		}
		if m := msgs[1]; m.Text != "Run make check again." || !hasEntity(m, "code", "make check") || m.ThreadID != homeTopic || m.ReplyTo != 0 {
			t.Errorf("the second delivery shows as %+v, want \"Run make check again.\" with make check as code, in topic %d", m, homeTopic)
		}
		checkSent(t, settled(t, r, first.ID), chatOf(forum), homeTopic, msgs[0].ID)
		checkSent(t, settled(t, r, second.ID), chatOf(forum), homeTopic, msgs[1].ID)
		g.stop()
		// Nothing but the two messages (and, as the gateway's pacing may
		// show it, typing): no draft, no edit, no call refused.
		for _, c := range srv.CallsTo(forum.ID) {
			if (c.Method != "sendMessage" && c.Method != "sendChatAction") || c.Status != 200 {
				t.Errorf("calls to the forum: %s; want the two messages sent, nothing else", methods(srv.CallsTo(forum.ID)))
				break
			}
		}
		if n := len(srv.CallsOf("sendMessage")); n != 2 {
			t.Errorf("%d messages sent, want 2", n)
		}
	})
}

// Fifty deliveries to a group, back to back: all arrive, in order, within
// the group's budget of 20 a minute and the chat's of one a second, which
// the fake holds the gateway to.
func TestDeliveryBurstKeepsTheChatBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		seen := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "hello everyone"})
		g, r := startDelivering(t, srv, platform.Home{}, nil)
		waitTaken(t, srv, seen)

		const n = 50
		var want []string
		var ds []store.Delivery
		start := time.Now()
		for i := range n {
			want = append(want, fmt.Sprintf("Report %d of %d", i+1, n))
			ds = append(ds, platformtest.Deliver(t, r, fmt.Sprint("burst-", i), "telegram:"+chatOf(group), want[i]))
		}
		// 20 at once, then one every 3 s: 90 s of fake time.
		platformtest.WaitFor(t, srv, 10*time.Minute, "the 50 deliveries", func() bool { return len(srv.BotMessages(group.ID)) >= n })
		took := time.Since(start)

		if got := srv.BotTexts(group.ID); !slices.Equal(got, want) {
			t.Errorf("the group shows %q, want %q", got, want)
		}
		if v := srv.Violations(); len(v) != 0 {
			t.Errorf("%d calls over a flood limit", len(v))
		}
		if p := srv.Penalties(group.ID); len(p) != 0 {
			t.Errorf("the group was penalised: %+v", p)
		}
		for _, c := range srv.CallsTo(group.ID) {
			if c.Status != 200 {
				t.Errorf("%s answered %d %s", c.Method, c.Status, c.Description)
			}
		}
		// Paced by the budget, not far slower: the last message may not go
		// before 90 s, and need not wait much past it.
		if took < 90*time.Second || took > 2*time.Minute {
			t.Errorf("the burst took %v, want about 90 s (20 at once, then one every 3 s)", took)
		}
		msgs := srv.BotMessages(group.ID)
		for i, d := range ds {
			checkSent(t, settled(t, r, d.ID), chatOf(group), 0, msgs[i].ID)
		}
		g.stop()
	})
}

// A text over Telegram's 4096 UTF-16 units goes as several messages, each
// within the limit (characters outside the BMP count twice), together the
// whole text, in order.
func TestDeliveryOfALongTextIsSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b strings.Builder
		for i := range 60 {
			fmt.Fprintf(&b, "Line %02d of the weekly digest 🎉 %s\n\n", i, strings.Repeat("🚀 status nominal, ", 8))
		}
		text := strings.TrimSpace(b.String())
		if n := telegramtest.UTF16Len(text); n <= 2*MaxLength || len([]rune(text)) > 3*MaxLength {
			t.Fatalf("the text has %d UTF-16 units", n)
		}

		srv := newServer(t)
		seen := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "hello everyone"})
		g, r := startDelivering(t, srv, platform.Home{}, nil)
		waitTaken(t, srv, seen)
		d := platformtest.Deliver(t, r, "digest", "telegram:"+chatOf(group), text)
		waitFor(t, srv, "the whole text", func() bool {
			return squash(strings.Join(srv.BotTexts(group.ID), "\n")) == squash(text)
		})
		got := settled(t, r, d.ID)
		g.stop()

		msgs := srv.BotMessages(group.ID)
		if len(msgs) < 3 {
			t.Errorf("%d messages for %d UTF-16 units", len(msgs), telegramtest.UTF16Len(text))
		}
		var ids []int
		for i, m := range msgs {
			ids = append(ids, m.ID)
			if n := telegramtest.UTF16Len(m.Text); n > MaxLength {
				t.Errorf("message %d has %d UTF-16 units", i, n)
			}
			if m.Edits != 0 {
				t.Errorf("message %d was edited %d times: a delivery is sent whole", i, m.Edits)
			}
		}
		checkSent(t, got, chatOf(group), 0, ids...)
	})
}

// A chat no message came from, and a topic of a known chat nobody wrote
// in, are no targets: the delivery is refused, naming the target, and
// nothing is journalled or sent.
func TestDeliveryToAnUnknownChatIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		other := telegramtest.Chat{ID: -1001000000099, Type: telegramtest.Supergroup, Title: "Elsewhere"}
		srv.AddChat(other) // the bot is in it, but nobody wrote there
		seen := srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "hello everyone"})
		g, r := startDelivering(t, srv, platform.Home{}, nil)
		waitTaken(t, srv, seen)

		for _, target := range []string{"telegram:" + chatOf(other), "telegram:" + chatOf(group) + ":42", "telegram:@some_channel"} {
			d, created, err := r.Deliver(t.Context(), "k-"+target, target, "the report")
			if !errors.Is(err, gateway.ErrUnknownTarget) || !strings.Contains(err.Error(), strconv.Quote(target)) || created || d.ID != 0 {
				t.Errorf("delivering to %q: %+v, created %v, %v; want ErrUnknownTarget naming it", target, d, created, err)
			}
		}
		// The known chat, by the same route, is a target.
		ok := platformtest.Deliver(t, r, "k-known", "telegram:"+chatOf(group), "the report")
		waitFor(t, srv, "the delivery to the known chat", func() bool { return len(srv.BotMessages(group.ID)) == 1 })
		checkSent(t, settled(t, r, ok.ID), chatOf(group), 0, srv.BotMessages(group.ID)[0].ID)
		g.stop()

		if calls := srv.CallsTo(other.ID); len(calls) != 0 {
			t.Errorf("the unknown chat got %s", methods(calls))
		}
		if n := len(srv.CallsOf("sendMessage")); n != 1 {
			t.Errorf("%d messages sent, want only the one to the known chat", n)
		}
	})
}

// /sethome from a user named in the allowlist makes the chat (and topic)
// the home channel and says so; from a user not allowed it is dropped,
// and from one let in by the chat's list without being named it is
// refused: neither makes a home.
func TestSetHomeFromTheChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		carol := telegramtest.User{ID: 1003, FirstName: "Carol", Username: "carol"}
		srv := newServer(t)
		srv.AddChat(group)
		g, r := startDelivering(t, srv, platform.Home{}, func(o *gateway.Options) {
			// Everyone may talk in the forum.
			o.Access.Platforms[Name] = gateway.Allowlist{GroupChats: []string{chatOf(forum)}}
		})
		noHome := func(when string) {
			t.Helper()
			if _, _, err := r.Deliver(t.Context(), "none "+when, "telegram", "x"); !errors.Is(err, gateway.ErrUnknownTarget) {
				t.Errorf("delivering to telegram %s: %v, want ErrUnknownTarget (no home)", when, err)
			}
		}

		// A stranger: dropped, no answer, no home.
		in := srv.Inject(telegramtest.Incoming{Chat: group, From: stranger, Text: "/sethome"})
		waitTaken(t, srv, in)
		synctest.Wait()
		if msgs := srv.BotMessages(group.ID); len(msgs) != 0 {
			t.Errorf("the bot answered a stranger's /sethome: %+v", msgs)
		}
		noHome("after a stranger's /sethome")

		// Carol may talk in the forum, but is not named: refused.
		srv.Inject(telegramtest.Incoming{Chat: forum, From: carol, Text: "/sethome@herald_bot", ThreadID: homeTopic})
		waitFor(t, srv, "the refusal", func() bool { return len(srv.BotMessages(forum.ID)) == 1 })
		if m := srv.BotMessages(forum.ID)[0]; m.Text != texts.HomeRefused || m.ThreadID != homeTopic {
			t.Errorf("carol's /sethome was answered %+v, want %q in the topic", m, texts.HomeRefused)
		}
		noHome("after a refused /sethome")

		// Alice is named: the group becomes the home channel.
		srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "/sethome"})
		waitFor(t, srv, "the confirmation", func() bool { return len(srv.BotMessages(group.ID)) == 1 })
		if got := srv.BotTexts(group.ID)[0]; got != texts.HomeSet(group.Title) {
			t.Errorf("alice's /sethome was answered %q, want %q", got, texts.HomeSet(group.Title))
		}
		d := platformtest.Deliver(t, r, "k1", "telegram", "Report to the new home")
		waitFor(t, srv, "the report", func() bool { return len(srv.BotMessages(group.ID)) == 2 })
		msgs := srv.BotMessages(group.ID)
		if m := msgs[1]; m.Text != "Report to the new home" || m.ThreadID != 0 || m.ReplyTo != 0 {
			t.Errorf("the report shows as %+v", m)
		}
		checkSent(t, settled(t, r, d.ID), chatOf(group), 0, msgs[1].ID)

		// In a forum topic, the topic becomes the home channel.
		srv.Inject(telegramtest.Incoming{Chat: forum, From: bob, Text: "/sethome", ThreadID: homeTopic})
		waitFor(t, srv, "the confirmation in the topic", func() bool { return len(srv.BotMessages(forum.ID)) == 2 })
		if m := srv.BotMessages(forum.ID)[1]; m.Text != texts.HomeSet(forum.Title) || m.ThreadID != homeTopic {
			t.Errorf("bob's /sethome in the topic was answered %+v, want %q in topic %d", m, texts.HomeSet(forum.Title), homeTopic)
		}
		d = platformtest.Deliver(t, r, "k2", "home", "Report to the topic")
		waitFor(t, srv, "the report in the topic", func() bool { return len(srv.BotMessages(forum.ID)) == 3 })
		m := srv.BotMessages(forum.ID)[2]
		if m.Text != "Report to the topic" || m.ThreadID != homeTopic || m.ReplyTo != 0 {
			t.Errorf("the report shows as %+v, want it in topic %d", m, homeTopic)
		}
		checkSent(t, settled(t, r, d.ID), chatOf(forum), homeTopic, m.ID)
		g.stop()
		if n := len(srv.BotMessages(group.ID)); n != 2 {
			t.Errorf("the old home got %d messages, want the 2 before the move", n)
		}
	})
}

// A /sethome overrides the home of the settings.
func TestSetHomeOverridesTheConfiguredHome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		srv.AddChat(forum)
		srv.AddChat(group)
		g, r := startDelivering(t, srv, platform.Home{Chat: chatOf(forum)}, nil)

		before := platformtest.Deliver(t, r, "k1", "telegram", "to the configured home")
		waitFor(t, srv, "the report in the configured home", func() bool { return len(srv.BotMessages(forum.ID)) == 1 })
		checkSent(t, settled(t, r, before.ID), chatOf(forum), 0, srv.BotMessages(forum.ID)[0].ID)

		srv.Inject(telegramtest.Incoming{Chat: group, From: alice, Text: "/sethome"})
		waitFor(t, srv, "the confirmation", func() bool { return len(srv.BotMessages(group.ID)) == 1 })
		after := platformtest.Deliver(t, r, "k2", "telegram", "to the new home")
		waitFor(t, srv, "the report in the new home", func() bool { return len(srv.BotMessages(group.ID)) == 2 })
		checkSent(t, settled(t, r, after.ID), chatOf(group), 0, srv.BotMessages(group.ID)[1].ID)
		g.stop()
		if got := srv.BotTexts(forum.ID); len(got) != 1 {
			t.Errorf("the configured home shows %q, want only the report before /sethome", got)
		}
	})
}

// A home chat may be named as the settings allow: a channel by its
// @username, a private chat by its user's id. Either gets the delivery as
// one message, in the chat, with no draft.
func TestDeliveryToAHomeNamedOtherwise(t *testing.T) {
	news := telegramtest.Chat{ID: -1001000000077, Type: telegramtest.Channel, Title: "Herald news", Username: "herald_news"}
	for _, c := range []struct {
		name string
		chat telegramtest.Chat
		home string
	}{
		{"channel by username", news, "@herald_news"},
		{"private chat", aliceDM, chatOf(aliceDM)},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t)
				srv.AddChat(c.chat)
				g, r := startDelivering(t, srv, platform.Home{Chat: c.home}, nil)
				first := platformtest.Deliver(t, r, "k1", "telegram", "First **report**")
				second := platformtest.Deliver(t, r, "k2", "telegram:"+c.home, "Second report")
				waitFor(t, srv, "both deliveries", func() bool { return len(srv.BotMessages(c.chat.ID)) == 2 })
				msgs := srv.BotMessages(c.chat.ID)
				if got := srv.BotTexts(c.chat.ID); !slices.Equal(got, []string{"First report", "Second report"}) || !hasEntity(msgs[0], "bold", "report") {
					t.Errorf("the home shows %q (%+v), want the two reports, the first with report bold", got, msgs)
				}
				checkSent(t, settled(t, r, first.ID), c.home, 0, msgs[0].ID)
				checkSent(t, settled(t, r, second.ID), c.home, 0, msgs[1].ID)
				g.stop()
				for _, call := range srv.CallsTo(c.chat.ID) {
					if (call.Method != "sendMessage" && call.Method != "sendChatAction") || call.Status != 200 {
						t.Errorf("calls to the home: %s; want the two messages sent, nothing else", methods(srv.CallsTo(c.chat.ID)))
						break
					}
				}
				if n := len(srv.CallsOf("sendMessage")); n != 2 {
					t.Errorf("%d messages sent, want 2", n)
				}
			})
		})
	}
}
