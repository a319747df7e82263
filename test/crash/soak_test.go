package crash

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

var (
	soakTurns = flag.Int("soak.turns", 0, "how many turns the soak runs; 0 skips it (make soak sets it)")
	soakRate  = flag.Float64("soak.rate", 40, "turns a second")
)

// soakChats is how many Telegram chats and web chat conversations share
// the turns.
const soakChats = 40

// usage is what the gateway process holds at one moment.
type usage struct {
	turns, rssKB, fds, goroutines int
}

func (u usage) String() string {
	return fmt.Sprintf("after %6d turns: RSS %6.1f MB, %4d goroutines, %3d open files", u.turns, float64(u.rssKB)/1024, u.goroutines, u.fds)
}

// The soak: many turns through Telegram and the web chat at a steady rate
// against the real binary; what the process holds (RSS, goroutines, open
// files) is sampled along the way and must not grow with the turns.
func TestSoak(t *testing.T) {
	if *soakTurns == 0 {
		t.Skip("the soak is make soak's (go test -soak.turns=N)")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("the soak reads the process's usage from /proc")
	}
	tg := telegramtest.NewServer(telegramtest.Options{Token: "123456789:AAEcrashTestTokenForTheHeraldBinary"})
	defer tg.Close()
	var chats []telegramtest.Chat
	var allowed []string
	for i := range soakChats {
		id := int64(5000 + i)
		c := telegramtest.Chat{ID: id, Type: telegramtest.Private, FirstName: "User" + strconv.Itoa(i)}
		tg.AddChat(c)
		chats = append(chats, c)
		allowed = append(allowed, strconv.FormatInt(id, 10))
	}
	var asked asks
	agent := httptest.NewServer(asked.counting(sim.New(sim.Options{AllowSessionWithoutKey: true, Logger: slog.New(slog.DiscardHandler), AnswerTokens: 8})))
	defer agent.Close()

	home := t.TempDir()
	// Each conversation's messages are answered in turn.
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("display:\n  busy_input_mode: queue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "herald.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	addr := freeAddr(t)
	gw := &gateway{bin: build(t), log: logf, env: append(os.Environ(),
		"HERALD_HOME="+home,
		"HERALD_HTTP_ADDR="+addr,
		"GATEWAY_PROXY_URL="+agent.URL,
		"TELEGRAM_BOT_TOKEN="+tg.Token,
		"TELEGRAM_BASE_URL="+tg.URL,
		"TELEGRAM_ALLOWED_USERS="+strings.Join(allowed, ","),
	)}
	gw.start(t)
	defer gw.stop()
	web := &http.Client{Timeout: 10 * time.Second}
	waitReady(t, web, addr)

	var samples []usage
	sample := func(turns int) {
		// Let the turns in flight end (their answers take less than the
		// pause), so that what is sampled is what stays.
		waitAsked(t, &asked, turns)
		time.Sleep(2 * time.Second)
		u := processUsage(t, gw.pid(), web, addr)
		u.turns = turns
		samples = append(samples, u)
		t.Log(u)
	}

	every := time.Duration(float64(time.Second) / *soakRate)
	warmUp := min(1000, *soakTurns/10)
	next := time.Now()
	var wg sync.WaitGroup
	for i := range *soakTurns {
		text := fmt.Sprintf("s%d", i)
		if i%2 == 0 {
			c := chats[(i/2)%len(chats)]
			tg.Inject(telegramtest.Incoming{Chat: c, From: telegramtest.User{ID: c.ID, FirstName: c.FirstName}, Text: text})
		} else {
			conv := fmt.Sprintf("soak-conversation-%02d", (i/2)%soakChats)
			wg.Go(func() {
				if err := post(web, addr, conv, text, 10*time.Second); err != nil {
					t.Error(err)
				}
			})
		}
		switch i + 1 {
		case warmUp, *soakTurns / 2, *soakTurns:
			wg.Wait()
			sample(i + 1)
			next = time.Now()
		}
		next = next.Add(every)
		time.Sleep(time.Until(next))
	}

	for i := range *soakTurns {
		if n := asked.of(fmt.Sprintf("s%d", i)); n != 1 {
			t.Errorf("s%d: the agent was asked %d times", i, n)
		}
	}
	first, mid, last := samples[0], samples[1], samples[2]
	if last.goroutines > first.goroutines+20 {
		t.Errorf("goroutines grew with the turns: %d → %d", first.goroutines, last.goroutines)
	}
	if last.fds > first.fds+20 {
		t.Errorf("open files grew with the turns: %d → %d", first.fds, last.fds)
	}
	if last.rssKB > mid.rssKB*5/4+10*1024 {
		t.Errorf("RSS grew in the second half of the turns: %d kB → %d kB", mid.rssKB, last.rssKB)
	}
}

// waitAsked waits until the agent has been asked for turns messages.
func waitAsked(t *testing.T, asked *asks, turns int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		asked.mu.Lock()
		n := len(asked.n)
		asked.mu.Unlock()
		if n >= turns {
			return
		}
	}
	t.Fatalf("the agent was not asked for all %d turns", turns)
}

// processUsage reads a process's RSS and open files from /proc, and its
// goroutines from its /metrics.
func processUsage(t *testing.T, pid int, c *http.Client, addr string) usage {
	t.Helper()
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	u.fds = len(fds)
	u.goroutines, _ = strconv.Atoi(strings.TrimPrefix(metric(c, addr, "go_goroutines"), "go_goroutines "))
	return u
}
