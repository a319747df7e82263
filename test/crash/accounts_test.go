package crash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
)

// bots are Telegram fakes, one per bot, behind one address.
type bots struct {
	URL     string
	servers map[string]*telegramtest.Server // by account name
	names   []string
}

func newBots(t *testing.T, names ...string) *bots {
	b := &bots{servers: map[string]*telegramtest.Server{}, names: names}
	var all []*telegramtest.Server
	for i, name := range names {
		s := telegramtest.NewServer(telegramtest.Options{
			Token:       fmt.Sprintf("%d:AAEcrashTestTokenForAccount-%s", 200000001+i, name),
			BotUsername: "herald_" + name + "_bot",
		})
		t.Cleanup(s.Close)
		b.servers[name] = s
		all = append(all, s)
	}
	ts := telegramtest.Together(all...)
	t.Cleanup(ts.Close)
	b.URL = ts.URL
	return b
}

// accountsEnv is TELEGRAM_ACCOUNTS naming every bot.
func (b *bots) accountsEnv() string {
	var pairs []string
	for _, name := range b.names {
		pairs = append(pairs, name+"="+b.servers[name].Token)
	}
	return "TELEGRAM_ACCOUNTS=" + strings.Join(pairs, ",")
}

// accountsOf is the accounts a replica's /readyz says it runs.
func accountsOf(addr string) []string {
	_, body := get(http.DefaultClient, addr, "/readyz")
	var r struct{ Accounts []string }
	_ = json.Unmarshal([]byte(body), &r)
	return r.Accounts
}

// waitSpread waits until the replicas at addrs run want accounts each
// (in any order), every account on exactly one of them.
func (w *faultWorld) waitSpread(what string, addrs []string, want ...int) {
	w.t.Helper()
	slices.Sort(want)
	w.waitFor(what, func() bool {
		var counts []int
		var all []string
		for _, addr := range addrs {
			held := accountsOf(addr)
			counts = append(counts, len(held))
			all = append(all, held...)
		}
		slices.Sort(counts)
		slices.Sort(all)
		return len(slices.Compact(all)) == len(all) && slices.Equal(counts, want)
	})
}

// Four Telegram bots as accounts over replicas on one PostgreSQL: one
// replica runs all four; a second joins and they run two each; a third
// joins and they spread two, one and one; killed with -9, the third's
// accounts go back to the two others. Messages sent to every bot all
// along are each answered exactly once, and no bot was ever polled by two
// replicas at once (Telegram would have answered 409 Conflict).
func TestAccountsSpreadOverReplicas(t *testing.T) {
	b := newBots(t, "ada", "bea", "cyd", "dov")
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s",
		"TELEGRAM_BOT_TOKEN=", "TELEGRAM_BASE_URL="+b.URL, b.accountsEnv(), "WEBCHAT_ENABLED=false",
		"HERMES_GATEWAY_BUSY_INPUT_MODE=queue") // each message answered, none interrupting another
	for _, s := range b.servers {
		s.AddChat(w.chat)
	}
	sent := 0
	askAll := func(round string) {
		for _, name := range b.names {
			b.servers[name].Inject(telegramtest.Incoming{Chat: w.chat, From: w.alice, Text: round + " to " + name})
			sent++
		}
	}

	w.agent.start(t)
	w.gw.start(t)
	addrs := []string{w.http}
	w.waitSpread("the first replica to run the four accounts", addrs, 4)
	askAll("alone")

	// join starts another replica, stopped when the test ends.
	join := func() *gateway {
		g, addr := w.replica(t)
		g.start(t)
		t.Cleanup(g.stop)
		addrs = append(addrs, addr)
		return g
	}
	join()
	askAll("while the second joins")
	w.waitSpread("two accounts on each of two replicas", addrs, 2, 2)
	for _, addr := range addrs {
		if got := metric(http.DefaultClient, addr, "herald_lease_held"); got != "herald_lease_held 2" {
			t.Errorf("/metrics of a replica running two accounts: %q", got)
		}
	}
	askAll("two replicas")

	third := join()
	askAll("while the third joins")
	w.waitSpread("the accounts spread over three replicas", addrs, 1, 1, 2)
	askAll("three replicas")

	// Killed, a replica's accounts lapse and the two others take them.
	third.kill()
	killed := time.Now()
	addrs = addrs[:2]
	w.waitSpread("the accounts back on two replicas", addrs, 2, 2)
	t.Logf("after kill -9 of the third replica, its accounts ran elsewhere %v later (lease TTL 2s)", time.Since(killed).Round(10*time.Millisecond))
	askAll("after a kill")

	// Every message answered once, by the bot it was sent to.
	answered := func() (n int, twice []string) {
		for _, name := range b.names {
			seen := map[string]int{}
			for _, m := range b.servers[name].Messages(w.chat.ID) {
				if m.FromBot && !strings.HasSuffix(m.Text, "▉") {
					seen[m.Text]++
				}
			}
			for text, k := range seen {
				if !strings.Contains(text, "You said") {
					continue // "waits its turn", while the one before runs
				}
				n += k
				if k > 1 {
					twice = append(twice, text)
				}
			}
		}
		return n, twice
	}
	w.waitFor("every message to be answered", func() bool { n, _ := answered(); return n >= sent })
	time.Sleep(time.Second) // nothing more follows
	if n, twice := answered(); n != sent || len(twice) > 0 {
		t.Errorf("%d messages sent, %d answers; answered twice: %q", sent, n, twice)
	}
	for name, s := range b.servers {
		for _, c := range s.CallsOf("getUpdates") {
			if c.Status == http.StatusConflict {
				t.Errorf("bot %s: getUpdates answered 409 at %s: two replicas polled at once", name, c.At.Format("15:04:05.000"))
			}
		}
	}
}
