package slack

// These tests deliver the agent's own messages (a scheduled job's report)
// through the real gateway's outbox to the fake Slack's Web API.

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/slack/slacktest"
	"github.com/herald-chat/herald/internal/store"
)

// startDelivering runs the gateway as start does, with the home channel
// of the adapter's settings wired into the gateway's options as the app
// wires it.
func (w *world) startDelivering(backend agent.Backend, opts Options) *platformtest.Gateway {
	w.t.Helper()
	gopts := platformtest.GatewayOptions(w.t, allowed)
	if h, ok := opts.Home(); ok {
		gopts.Homes = map[string]chat.Target{Name: h}
	}
	return platformtest.StartGateway(w.t, gopts, backend, w.st, w.adapter(opts), waitTimeout)
}

// checkSent fails the test unless the delivery, once settled, has one
// send, sent to the channel (and thread) as the message ts.
func checkSent(t *testing.T, g *platformtest.Gateway, d store.Delivery, channel, thread, ts string) {
	t.Helper()
	platformtest.CheckSent(t, platformtest.Settled(t, g.Runner, d.ID), Name, channel, thread, ts)
}

// posted is the one successful chat.postMessage that posted the text of
// m, failing the test unless there is exactly one.
func (w *world) posted(m slacktest.Message) slacktest.Call {
	w.t.Helper()
	var found []slacktest.Call
	for _, c := range w.srv.CallsOf("chat.postMessage") {
		if c.Status == 200 && c.Error == "" && c.Params["text"] == m.Text {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		w.t.Fatalf("%d chat.postMessage calls posted %q, want one: %+v", len(found), m.Text, w.srv.Calls())
	}
	return found[0]
}

// checkNoFailedCalls fails the test for any Web API call that failed.
func (w *world) checkNoFailedCalls() {
	w.t.Helper()
	for _, c := range w.srv.Calls() {
		if c.Status != 200 || c.Error != "" {
			w.t.Errorf("%s in %s failed: %d %s", c.Method, c.Channel, c.Status, c.Error)
		}
	}
}

// The home channel of the settings gets what is delivered to "slack" and
// to "home": posted at its top level with chat.postMessage, rendered for
// Slack, in order.
func TestDeliveryToTheHomeChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		opts := w.options()
		opts.HomeChannel = platform.Home{Chat: general.ID}
		g := w.startDelivering(platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond}, opts)

		texts := []string{"The **daily** report: all green, see <https://ci.example.com/42>.", "Nothing else."}
		first := platformtest.Deliver(t, g.Runner, "daily-1", "slack", texts[0])
		second := platformtest.Deliver(t, g.Runner, "daily-2", "home", texts[1])
		w.waitFor("both deliveries", func() bool { return len(w.botMessages(general.ID, "")) == 2 })
		g.Stop()

		msgs := w.botMessages(general.ID, "")
		for i, m := range msgs {
			if m.Text != render(texts[i]) || m.Streamed {
				t.Errorf("delivery %d shows as %+v, want %q posted", i, m, render(texts[i]))
			}
			if c := w.posted(m); c.Channel != general.ID || c.Params["thread_ts"] != "" {
				t.Errorf("message %q was posted with %+v, want to %s outside any thread", m.Text, c.Params, general.ID)
			}
		}
		if strings.Contains(msgs[0].Text, "<https://") {
			t.Errorf("the first delivery shows %q: the markdown was not rendered for Slack", msgs[0].Text)
		}
		checkSent(t, g, first, general.ID, "", msgs[0].TS)
		checkSent(t, g, second, general.ID, "", msgs[1].TS)
		if n := len(w.srv.CallsOf("chat.startStream")); n != 0 {
			t.Errorf("%d streams started for deliveries outside a thread", n)
		}
		w.checkNoFailedCalls()
	})
}

// builds is a channel where alice asks the bot.
var builds = slacktest.Channel{ID: "C0BUILDS001", Name: "builds"}

// A home channel with a thread gets its deliveries in that thread; a
// thread a message came from is a target as "slack:<channel>:<thread
// ts>", and another thread of that channel is not; the deliveries are
// posted with chat.postMessage and thread_ts.
func TestDeliveryToAThread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		w.srv.AddChannel(builds)
		// The thread the reports go in, which bob started.
		reports := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: bob.ID, Text: "Reports go in this thread"})
		opts := w.options()
		opts.HomeChannel = platform.Home{Chat: general.ID, Thread: reports}
		b := platformtest.Count(platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond})
		g := w.startDelivering(b, opts)

		// Alice asks in the channel: her message starts the thread the
		// answer goes in.
		asked := w.srv.Inject(slacktest.Incoming{Channel: builds.ID, User: alice.ID, Text: mention + "watch the build"})
		w.waitAnswer(b, builds.ID, asked, "watch the build")
		other := w.srv.Inject(slacktest.Incoming{Channel: builds.ID, User: bob.ID, Text: "an unrelated message"})

		for _, target := range []string{"slack:" + builds.ID + ":" + other, "slack:" + aliceDM.ID} {
			if d, created, err := g.Runner.Deliver(t.Context(), "k-"+target, target, "x"); !errors.Is(err, gateway.ErrUnknownTarget) || created || d.ID != 0 {
				t.Errorf("delivering to %q: %+v, created %v, %v; want ErrUnknownTarget", target, d, created, err)
			}
		}
		toHome := platformtest.Deliver(t, g.Runner, "k1", "slack", "Build **passed**.")
		toThread := platformtest.Deliver(t, g.Runner, "k2", "slack:"+builds.ID+":"+asked, "The build you watch passed.")
		w.waitFor("both deliveries", func() bool {
			return len(w.botMessages(general.ID, reports)) == 1 && len(w.botMessages(builds.ID, asked)) == 2
		})
		g.Stop()

		home := w.botMessages(general.ID, reports)[0]
		if home.Text != render("Build **passed**.") || home.Streamed {
			t.Errorf("the home thread shows %+v, want the report posted", home)
		}
		if c := w.posted(home); c.Channel != general.ID || c.Params["thread_ts"] != reports {
			t.Errorf("the report to the home thread was posted with %+v, want thread_ts %s", c.Params, reports)
		}
		inThread := w.botMessages(builds.ID, asked)[1]
		if inThread.Text != "The build you watch passed." || inThread.Streamed {
			t.Errorf("alice's thread shows %+v, want the report posted", inThread)
		}
		if c := w.posted(inThread); c.Channel != builds.ID || c.Params["thread_ts"] != asked {
			t.Errorf("the report to alice's thread was posted with %+v, want thread_ts %s", c.Params, asked)
		}
		for _, ch := range []string{general.ID, builds.ID} {
			if top := w.botMessages(ch, ""); len(top) != 0 {
				t.Errorf("the top level of %s shows %+v, want nothing there", ch, top)
			}
		}
		if msgs := w.botMessages(builds.ID, other); len(msgs) != 0 {
			t.Errorf("the thread nobody asked in shows %+v", msgs)
		}
		checkSent(t, g, toHome, general.ID, reports, home.TS)
		checkSent(t, g, toThread, builds.ID, asked, inThread.TS)
	})
}

// A delivery to a channel's thread has nobody it answers: Slack refuses a
// stream there without recipient_user_id, so the message is posted, with
// no chat.startStream that can only fail first.
func TestDeliveryToAChannelThreadStartsNoStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, slacktest.Options{})
		reports := w.srv.Inject(slacktest.Incoming{Channel: general.ID, User: bob.ID, Text: "Reports go in this thread"})
		opts := w.options()
		opts.HomeChannel = platform.Home{Chat: general.ID, Thread: reports}
		g := w.startDelivering(platformtest.Scripted{Answer: "an answer", Piece: 8, Every: 10 * time.Millisecond}, opts)
		d := platformtest.Deliver(t, g.Runner, "k1", "slack", "Build passed.")
		w.waitFor("the delivery", func() bool { return len(w.botMessages(general.ID, reports)) == 1 })
		g.Stop()
		checkSent(t, g, d, general.ID, reports, w.botMessages(general.ID, reports)[0].TS)
		for _, c := range w.srv.CallsOf("chat.startStream") {
			t.Errorf("chat.startStream for a delivery to a channel thread, answered %q (params %v)", c.Error, c.Params)
		}
		w.checkNoFailedCalls()
	})
}
