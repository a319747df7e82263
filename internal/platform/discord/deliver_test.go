package discord

// These tests deliver the agent's own messages (a scheduled job's report)
// through the real gateway's outbox to the fake Discord's REST API.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/discord/discordtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/store"
)

// startDelivering runs the gateway as start does, with the home channel
// of the adapter's settings wired into the gateway's options as the app
// wires it.
func (w *world) startDelivering(backend agent.Backend, opts Options) *platformtest.Gateway {
	t := w.t
	t.Helper()
	a, err := New(opts, platformDeps(w, t))
	if err != nil {
		t.Fatal(err)
	}
	gopts := platformtest.GatewayOptions(t, allowed)
	if h, ok := opts.Home(); ok {
		gopts.Homes = map[string]chat.Target{Name: h}
	}
	return platformtest.StartGateway(t, gopts, backend, w.st, a, waitTimeout)
}

// checkSent fails the test unless the delivery, once settled, has one
// send, sent to the channel (and thread) as the message id.
func checkSent(t *testing.T, g *platformtest.Gateway, d store.Delivery, channel, thread, id string) {
	t.Helper()
	platformtest.CheckSent(t, platformtest.Settled(t, g.Runner, d.ID), Name, channel, thread, id)
}

// The home channel of the settings gets what is delivered to "discord"
// and to "home", as plain channel messages replying to nobody and pinging
// nobody; a burst of them keeps within the channel's rate limit, in order;
// the same text delivered twice shows twice (each delivery is its own
// message, whatever Discord's nonce makes of a send made again).
func TestDeliveryToTheHomeChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	opts := w.options()
	opts.HomeChannel = platform.Home{Chat: general.ID, Name: "general"}
	g := w.startDelivering(platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond}, opts)

	texts := []string{"**Nightly** report: all green. @everyone look", "All good.", "All good."}
	targets := []string{"discord", "home", "discord"}
	for i := range 4 {
		texts = append(texts, fmt.Sprintf("Report %d", i))
		targets = append(targets, "discord")
	}
	var ds []store.Delivery
	for i, text := range texts {
		ds = append(ds, platformtest.Deliver(t, g.Runner, fmt.Sprint("job-", i), targets[i], text))
	}
	// The last delivery arrives after all those before it.
	w.waitFor("the last delivery", func() bool {
		msgs := w.srv.BotMessages(general.ID)
		return len(msgs) > 0 && msgs[len(msgs)-1].Content == texts[len(texts)-1]
	})
	// Stopping lets the last send record its outcome.
	g.Stop()

	msgs := w.srv.BotMessages(general.ID)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Content)
		if m.ReplyTo != "" || len(m.Pings) != 0 {
			t.Errorf("delivery %q replies to %q and pings %q, want neither", m.Content, m.ReplyTo, m.Pings)
		}
	}
	if !slices.Equal(got, texts) {
		t.Fatalf("the home channel shows %q, want %q", got, texts)
	}
	for i, d := range ds {
		checkSent(t, g, d, general.ID, "", msgs[i].ID)
	}
	// Nothing but the messages (and, as the gateway's pacing may show it,
	// typing): no edit, no deletion, no call refused.
	creates := 0
	for _, c := range w.srv.CallsTo(general.ID) {
		if (c.Route != createRoute && c.Route != typing) || c.Status >= 300 {
			t.Errorf("calls to the home channel: %s; want the messages created, nothing else", routes(w.srv.CallsTo(general.ID)))
			break
		}
		if c.Route == createRoute {
			creates++
		}
	}
	if creates != len(texts) {
		t.Errorf("%d messages created, want %d", creates, len(texts))
	}
	w.checkPenalties(general.ID)
	if v := w.srv.Violations(); len(v) != 0 {
		t.Errorf("%d calls over a rate limit", len(v))
	}
}

// A channel, or a thread, a message came from is a target by its id
// ("discord:<channel>", "discord:<channel>:<thread>"); one nobody wrote
// in is not, and without a home "discord" is not either.
func TestDeliveryToAKnownChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t, discordtest.Options{})
	b := platformtest.Count(platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond})
	g := w.startDelivering(b, w.options())
	bot := "<@" + w.srv.Bot.ID + "> "
	w.srv.Inject(discordtest.Incoming{ChannelID: quiet.ID, Author: alice, Content: bot + "hello"})
	w.waitAnswer(b, quiet.ID, "hello")
	w.srv.Inject(discordtest.Incoming{ChannelID: topic.ID, Author: bob, Content: bot + "in the thread"})
	w.waitAnswer(b, topic.ID, "in the thread")

	for _, target := range []string{"discord", "discord:" + free.ID, "discord:" + general.ID + ":300000000000000077"} {
		if d, created, err := g.Runner.Deliver(t.Context(), "k-"+target, target, "x"); !errors.Is(err, gateway.ErrUnknownTarget) || created || d.ID != 0 {
			t.Errorf("delivering to %q: %+v, created %v, %v; want ErrUnknownTarget", target, d, created, err)
		}
	}
	toChannel := platformtest.Deliver(t, g.Runner, "to-quiet", "discord:"+quiet.ID, "Report for the channel")
	toThread := platformtest.Deliver(t, g.Runner, "to-topic", "discord:"+general.ID+":"+topic.ID, "Report for the thread")
	w.waitFor("both deliveries", func() bool {
		return len(w.srv.BotMessages(quiet.ID)) == 2 && len(w.srv.BotMessages(topic.ID)) == 2
	})
	g.Stop()

	inChannel, inThread := w.srv.BotMessages(quiet.ID)[1], w.srv.BotMessages(topic.ID)[1]
	if inChannel.Content != "Report for the channel" || inChannel.ReplyTo != "" {
		t.Errorf("the channel shows %+v, want the report replying to nobody", inChannel)
	}
	if inThread.Content != "Report for the thread" || inThread.ReplyTo != "" {
		t.Errorf("the thread shows %+v, want the report replying to nobody", inThread)
	}
	checkSent(t, g, toChannel, quiet.ID, "", inChannel.ID)
	checkSent(t, g, toThread, general.ID, topic.ID, inThread.ID)
	for _, ch := range []string{free.ID, general.ID, aliceDM.ID} {
		if msgs := w.srv.BotMessages(ch); len(msgs) != 0 {
			t.Errorf("channel %s, where no delivery was to go, shows %+v", ch, msgs)
		}
	}
}
