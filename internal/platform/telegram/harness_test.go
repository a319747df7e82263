package telegram

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/memnet"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The people and chats of the tests.
var (
	alice    = telegramtest.User{ID: 1001, FirstName: "Alice", Username: "alice"}
	bob      = telegramtest.User{ID: 1002, FirstName: "Bob", Username: "bob"}
	stranger = telegramtest.User{ID: 6666, FirstName: "Mallory"}

	aliceDM = telegramtest.Chat{ID: alice.ID, Type: telegramtest.Private, FirstName: "Alice", Username: "alice"}
	group   = telegramtest.Chat{ID: -1001000000001, Type: telegramtest.Supergroup, Title: "Team"}
	forum   = telegramtest.Chat{ID: -1001000000002, Type: telegramtest.Supergroup, Title: "Forum", IsForum: true}
)

// allowed are the users the gateway lets in.
var allowed = []string{"1001", "1002"}

// waitTimeout only keeps a broken test from hanging; no test depends on it.
// The tests run in synctest bubbles, where time is fake: a test that waits
// on a deadlock reaches it at once.
const waitTimeout = 60 * time.Second

// networks are the tests' in-memory networks, one per test: in a bubble
// the fake Bot API, the simulator and the adapter talk over memnet, as a
// real socket would keep the bubble's clock from moving.
var networks sync.Map // *testing.T → *memnet.Network

// network is the test's network.
func network(t *testing.T) *memnet.Network {
	n, loaded := networks.LoadOrStore(t, new(memnet.Network))
	if !loaded {
		t.Cleanup(func() { networks.Delete(t) })
	}
	return n.(*memnet.Network)
}

// newServer starts a fake Bot API with Telegram's documented flood limits.
func newServer(t *testing.T) *telegramtest.Server {
	t.Helper()
	srv := telegramtest.NewServer(telegramtest.Options{
		Flood:    &telegramtest.DocumentedFlood,
		Listener: network(t).Listen(),
	})
	t.Cleanup(func() {
		srv.Close()
		for _, c := range srv.Violations() {
			t.Errorf("%s to chat %d at %s: over a flood limit or during a penalty", c.Method, c.ChatID, c.At.Format("15:04:05.000"))
		}
	})
	return srv
}

// newPlainServer starts a fake Bot API without flood limits, for tests that
// call the adapter directly, without the gateway's pacing.
func newPlainServer(t *testing.T) *telegramtest.Server {
	t.Helper()
	srv := telegramtest.NewServer(telegramtest.Options{Listener: network(t).Listen()})
	t.Cleanup(srv.Close)
	return srv
}

// newSim starts the Hermes API simulator and returns it with a backend
// talking to it.
func newSim(t *testing.T, opts sim.Options) (*sim.Server, agent.Backend) {
	t.Helper()
	s, b := platformtest.Sim(t, network(t), opts)
	return s, b.Backend
}

// recording is the adapter with its handler watched: it keeps every
// message the gateway took, and before handing one over it asks hook,
// which may refuse it.
type recording struct {
	*Adapter
	hook func(ctx context.Context, in chat.Inbound) error

	mu    sync.Mutex
	taken []chat.Inbound
}

func (r *recording) Run(ctx context.Context, h platform.Handler) error {
	return r.Adapter.Run(ctx, func(ctx context.Context, in chat.Inbound) error {
		if r.hook != nil {
			if err := r.hook(ctx, in); err != nil {
				return err
			}
		}
		err := h(ctx, in)
		if err == nil {
			r.mu.Lock()
			r.taken = append(r.taken, in)
			r.mu.Unlock()
		}
		return err
	})
}

func (r *recording) inbound() []chat.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Inbound(nil), r.taken...)
}

// gw is a running gateway with the Telegram adapter.
type gw struct {
	ad     *recording
	stop   func()
	cancel context.CancelFunc // a crash: the gateway's context ends, nothing waits
	ready  func() error
}

// gwConfig adjusts a test gateway.
type gwConfig struct {
	transport string
	busyMode  string // default interrupt
	adapter   func(*Options)
	hook      func(ctx context.Context, in chat.Inbound) error
}

// gatewayStore is what the gateway and the adapter keep their state in:
// the SQLite store, or a wrapper of it.
type gatewayStore interface {
	gateway.Store
	platform.StateStore
}

// startGateway runs the real gateway (runner, delivery, store) with the
// Telegram adapter against srv, until the test ends or stop is called.
func startGateway(t *testing.T, srv *telegramtest.Server, st gatewayStore, backend agent.Backend, cfg gwConfig) *gw {
	t.Helper()
	opts := Options{Token: srv.Token, BaseURL: srv.URL, MaxMediaBytes: 5 << 20, RequireMention: true}
	if cfg.adapter != nil {
		cfg.adapter(&opts)
	}
	a, err := New(opts, platform.Deps{State: st, Logger: platformtest.Logger(t), HTTPClient: network(t).Client()})
	if err != nil {
		t.Fatal(err)
	}
	ad := &recording{Adapter: a, hook: cfg.hook}
	gopts := platformtest.GatewayOptions(t, allowed)
	if cfg.transport != "" {
		gopts.Streaming.Transport = cfg.transport
	}
	if cfg.busyMode != "" {
		gopts.BusyMode = cfg.busyMode
	}
	run := platformtest.StartGateway(t, gopts, backend, st, ad, waitTimeout)
	return &gw{ad: ad, stop: run.Stop, cancel: run.Cancel, ready: run.Ready}
}

// waitFor waits until cond holds, re-checking it whenever the fake
// server's state changes.
func waitFor(t *testing.T, srv *telegramtest.Server, what string, cond func() bool) {
	t.Helper()
	platformtest.WaitFor(t, srv, waitTimeout, what, cond)
}

// waitTaken waits until the adapter has confirmed an update to Telegram,
// which it does only after the gateway took it.
func waitTaken(t *testing.T, srv *telegramtest.Server, in telegramtest.Injected) {
	t.Helper()
	waitFor(t, srv, "the update to be taken", func() bool { return srv.Confirmed() > in.UpdateID })
}

// waitAnswer waits until the chat's last bot message is the final answer
// to message, and returns that answer.
func waitAnswer(t *testing.T, srv *telegramtest.Server, b *platformtest.Counting, chatID int64, message string) string {
	t.Helper()
	var want string
	waitFor(t, srv, "the answer to "+message, func() bool {
		final, ok := b.Final(message)
		if !ok {
			return false
		}
		want = final
		msgs := srv.BotMessages(chatID)
		return len(msgs) > 0 && msgs[len(msgs)-1].Text == final
	})
	return want
}

// checkPenalties fails the test if anything was sent to a chat while it
// was under a rate-limit penalty. (Every test's server also fails it for a
// call over a flood limit: see newServer.)
func checkPenalties(t *testing.T, srv *telegramtest.Server, chatID int64) {
	t.Helper()
	for _, p := range srv.Penalties(chatID) {
		for _, c := range srv.CallsTo(chatID) {
			if c.At.After(p.From) && c.At.Before(p.Until) {
				t.Errorf("%s to chat %d at %s, during the penalty from %s to %s",
					c.Method, chatID, c.At.Format("15:04:05.000"), p.From.Format("15:04:05.000"), p.Until.Format("15:04:05.000"))
			}
		}
	}
}

// methods lists the methods of calls, for messages.
func methods(calls []telegramtest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Method)
		if c.Status != 200 {
			b.WriteString("(" + c.Description + ")")
		}
		b.WriteString(" ")
	}
	return b.String()
}

var errCrash = errors.New("simulated crash before the message was journalled")
