package discord

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/memnet"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/discord/discordtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The people and places of the tests.
var (
	alice    = discordtest.User{ID: "100000000000000001", Username: "alice", GlobalName: "Alice"}
	bob      = discordtest.User{ID: "100000000000000002", Username: "bob"}
	stranger = discordtest.User{ID: "100000000000000666", Username: "mallory"}

	guildID = "200000000000000001"
	general = discordtest.Channel{ID: "300000000000000001", GuildID: guildID, Name: "general", Type: 0}
	free    = discordtest.Channel{ID: "300000000000000002", GuildID: guildID, Name: "ask-herald", Type: 0}
	quiet   = discordtest.Channel{ID: "300000000000000003", GuildID: guildID, Name: "quiet", Type: 0}
	topic   = discordtest.Channel{ID: "300000000000000004", GuildID: guildID, Name: "a topic", Type: 11, ParentID: general.ID}
	aliceDM = discordtest.Channel{ID: "300000000000000009", Type: 1, Recipient: &alice}
)

// allowed are the users the gateway lets in.
var allowed = []string{alice.ID, bob.ID}

// waitTimeout only keeps a broken test from hanging. The tests run in real
// time, in parallel: discordgo's Close sleeps a second holding a lock its
// reader waits on, which a synctest bubble takes for a deadlock.
const waitTimeout = 2 * time.Minute

// world is one test's network, fake Discord and store.
type world struct {
	t   *testing.T
	net *memnet.Network
	srv *discordtest.Server
	st  *sqlite.Store
}

// newWorld starts a fake Discord with Discord's rate limits, a server
// (guild) with its channels, and a DM, on an in-memory network.
func newWorld(t *testing.T, opts discordtest.Options) *world {
	t.Helper()
	w := &world{t: t, net: new(memnet.Network)}
	opts.Listener = w.net.Listen()
	if opts.Limits == nil {
		opts.Limits = &discordtest.DocumentedLimits
	}
	w.srv = discordtest.NewServer(opts)
	w.srv.AddGuild(guildID, "Team", general, free, quiet, topic)
	w.srv.AddChannel(aliceDM)
	t.Cleanup(func() {
		w.srv.Close()
		for _, c := range w.srv.Violations() {
			t.Errorf("%s %s at %s: over a rate limit or during a penalty", c.Method, c.Path, c.At.Format("15:04:05.000"))
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

// options are the adapter's settings for the world, as a user would set
// them: mentions required, auto-thread off unless a test turns it on.
func (w *world) options() Options {
	return Options{
		Token: w.srv.Token, BaseURL: w.srv.URL,
		RequireMention: true, FreeResponseChannels: []string{free.ID},
		Reactions: true, Backfill: 10 * time.Minute, MaxMediaBytes: 5 << 20,
	}
}

// platformDeps are what the gateway gives the adapter: the world's store
// and network.
func platformDeps(w *world, t testing.TB) platform.Deps {
	return platform.Deps{State: w.st, Logger: platformtest.Logger(t), HTTPClient: w.net.Client()}
}

// start runs the real gateway (runner, delivery, store) with the Discord
// adapter, until the test ends or stop is called.
func (w *world) start(backend agent.Backend, opts Options) *platformtest.Gateway {
	t := w.t
	t.Helper()
	a, err := New(opts, platformDeps(w, t))
	if err != nil {
		t.Fatal(err)
	}
	return platformtest.StartGateway(t, platformtest.GatewayOptions(t, allowed), backend, w.st, a, waitTimeout)
}

// waitFor waits until cond holds, re-checking it whenever the fake
// server's state changes.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	platformtest.WaitFor(w.t, w.srv, waitTimeout, what, cond)
}

// waitAnswer waits until the channel's last bot message is the final
// answer to message (without the cursor), and returns that answer.
func (w *world) waitAnswer(b *platformtest.Counting, channelID, message string) string {
	w.t.Helper()
	var want string
	w.waitFor("the answer to "+message, func() bool {
		final, ok := b.Final(message)
		if !ok {
			return false
		}
		want = final
		msgs := w.srv.BotMessages(channelID)
		return len(msgs) > 0 && joined(msgs[len(msgs)-1:]) == final
	})
	return want
}

// joined is the text of messages, as a reader sees them one after another.
func joined(msgs []discordtest.Message) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n")
}

// checkPenalties fails the test if anything was sent to a channel while it
// was under a rate-limit penalty on that route.
func (w *world) checkPenalties(channelID string) {
	w.t.Helper()
	for _, p := range w.srv.Penalties(channelID) {
		for _, c := range w.srv.CallsTo(channelID) {
			if (p.Global || c.Route == p.Route) && c.At.After(p.From) && c.At.Before(p.Until) {
				w.t.Errorf("%s %s at %s, during the penalty from %s to %s", c.Method, c.Path,
					c.At.Format("15:04:05.000"), p.From.Format("15:04:05.000"), p.Until.Format("15:04:05.000"))
			}
		}
	}
}

// routes lists the calls' routes, for messages.
func routes(calls []discordtest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Method + " " + c.Path)
		if c.Status >= 300 {
			b.WriteString("(" + http.StatusText(c.Status) + ")")
		}
		b.WriteString("; ")
	}
	return b.String()
}
