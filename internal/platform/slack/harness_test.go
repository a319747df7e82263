package slack

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/memnet"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/slack/slacktest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The people and conversations of the tests.
var (
	alice    = slacktest.User{ID: "U0ALICE0001", Name: "alice", RealName: "Alice"}
	bob      = slacktest.User{ID: "U0BOB000001", Name: "bob", RealName: "Bob"}
	stranger = slacktest.User{ID: "U0MALLORY01", Name: "mallory"}

	aliceDM = slacktest.Channel{ID: "D0ALICE0001", User: alice.ID}
	general = slacktest.Channel{ID: "C0GENERAL01", Name: "general"}
)

// allowed are the users the gateway lets in.
var allowed = []string{alice.ID, bob.ID}

// mention is how Slack writes a mention of the bot in message text.
const mention = "<@" + slacktest.DefaultBotUserID + "> "

// waitTimeout only keeps a broken test from hanging; the tests run in
// synctest bubbles, where time is fake and a deadlock shows at once.
const waitTimeout = 2 * time.Minute

// world is one test's network, fake Slack and store.
type world struct {
	t   *testing.T
	net *memnet.Network
	srv *slacktest.Server
	st  *sqlite.Store
}

// newWorld starts a fake Slack with Slack's rate limits, alice's DM and a
// channel, on an in-memory network. Call it inside the test's bubble.
func newWorld(t *testing.T, opts slacktest.Options) *world {
	t.Helper()
	w := &world{t: t, net: new(memnet.Network)}
	opts.Listener = w.net.Listen()
	if opts.Limits == nil {
		opts.Limits = &slacktest.DocumentedLimits
	}
	w.srv = slacktest.NewServer(opts)
	for _, u := range []slacktest.User{alice, bob, stranger} {
		w.srv.AddUser(u)
	}
	w.srv.AddChannel(aliceDM)
	w.srv.AddChannel(general)
	t.Cleanup(func() {
		w.srv.Close()
		for _, c := range w.srv.Violations() {
			t.Errorf("%s in %s at %s: over a rate limit or during a penalty", c.Method, c.Channel, c.At.Format("15:04:05.000"))
		}
	})
	w.st = platformtest.Store(t)
	return w
}

// sim starts the Hermes API simulator on the world's network and returns
// a backend talking to it, counting its turns.
func (w *world) sim(opts sim.Options) (*sim.Server, *platformtest.Counting) {
	return platformtest.Sim(w.t, w.net, opts)
}

// options are the adapter's settings for the world.
func (w *world) options() Options {
	return Options{BotToken: w.srv.BotToken, AppToken: w.srv.AppToken, APIURL: w.srv.URL, MaxMediaBytes: 5 << 20}
}

// adapter builds the adapter with the world's store and network.
func (w *world) adapter(opts Options) *Adapter {
	w.t.Helper()
	a, err := New(opts, platform.Deps{State: w.st, Logger: platformtest.Logger(w.t), HTTPClient: w.net.Client()})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// start runs the real gateway (runner, delivery, store) with the Slack
// adapter, until the test ends or Stop is called.
func (w *world) start(backend agent.Backend, opts Options) *platformtest.Gateway {
	w.t.Helper()
	return platformtest.StartGateway(w.t, platformtest.GatewayOptions(w.t, allowed), backend, w.st, w.adapter(opts), waitTimeout)
}

// waitFor waits until cond holds, re-checking it whenever the fake
// server's state changes.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	platformtest.WaitFor(w.t, w.srv, waitTimeout, what, cond)
}

// waitAnswer waits until the bot's last message in the channel (in the
// thread, when one is given) is the final answer to message, rendered for
// Slack, and no longer streaming; it returns the final answer. It returns
// once the bubble is idle, so the turn has seen Slack's reply to that last
// call: what the test sends next does not race the turn's end (a /new
// arriving before the reply would stop a delivery that is in fact done).
func (w *world) waitAnswer(b *platformtest.Counting, channel, thread, message string) string {
	w.t.Helper()
	var want string
	w.waitFor("the answer to "+message, func() bool {
		final, ok := b.Final(message)
		if !ok {
			return false
		}
		want = final
		msgs := w.botMessages(channel, thread)
		return len(msgs) > 0 && msgs[len(msgs)-1].Text == render(final) && !msgs[len(msgs)-1].Streaming
	})
	synctest.Wait()
	return want
}

// botMessages are the bot's messages in a channel: in a thread when one is
// given, else at its top level.
func (w *world) botMessages(channel, thread string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range w.srv.BotMessages(channel) {
		if m.ThreadTS == thread {
			out = append(out, m)
		}
	}
	return out
}
