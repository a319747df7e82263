package crash

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
)

// SIGHUP reads the configuration again: a user added to the allowlist in
// config.yaml is answered at once by the same process, on the same
// connection to Telegram (no second getMe: nothing reconnected); a
// changed setting that needs a restart is named in the log, and keeps its
// old effect; a broken file changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	w := newFaultWorld(t)
	var home string
	env := w.gw.env[:0]
	for _, kv := range w.gw.env {
		switch {
		case strings.HasPrefix(kv, "TELEGRAM_ALLOWED_USERS="):
			continue // from config.yaml instead, which a reload reads
		case strings.HasPrefix(kv, "HERALD_HOME="):
			home = strings.TrimPrefix(kv, "HERALD_HOME=")
		}
		env = append(env, kv)
	}
	w.gw.env = env
	config := filepath.Join(home, "config.yaml")
	write := func(text string) {
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("platforms:\n  telegram:\n    allowed_users: \"1001\"\n")
	bob := users[1]
	bobChat := telegramtest.Chat{ID: bob.ID, Type: telegramtest.Private, FirstName: bob.FirstName, Username: bob.Username}
	w.tg.AddChat(bobChat)
	if w.alice.ID != 1001 {
		t.Fatalf("alice is %d; the config above names 1001", w.alice.ID)
	}

	w.agent.start(t)
	w.gw.start(t)
	defer w.gw.stop()
	waitReady(t, http.DefaultClient, w.http)
	pid := w.pid()

	w.tg.Inject(telegramtest.Incoming{Chat: bobChat, From: bob, Text: "before"})
	if got := w.ask("alice first"); !strings.Contains(got, `You said: "alice first"`) {
		t.Fatalf("alice: %q", got)
	}
	if n := len(w.tg.BotMessages(bobChat.ID)); n != 0 {
		t.Fatalf("bob, not allowed yet, got %d answers", n)
	}

	write("platforms:\n  telegram:\n    allowed_users: \"1001,1002\"\ngateway:\n  connect_timeout: 7s\n")
	syscall.Kill(pid, syscall.SIGHUP)
	w.waitFor("the reload in the log", func() bool { return strings.Contains(logText(w.gw), "reloaded the configuration") })
	w.tg.Inject(telegramtest.Incoming{Chat: bobChat, From: bob, Text: "after"})
	w.waitFor("bob's answer", func() bool {
		for _, m := range w.tg.BotMessages(bobChat.ID) {
			if strings.Contains(m.Text, `You said: "after"`) && !strings.HasSuffix(m.Text, "▉") {
				return true
			}
		}
		return false
	})
	w.stillUp(pid)
	if n := len(w.tg.CallsOf("getMe")); n != 1 {
		t.Errorf("getMe called %d times: the reload reconnected to Telegram", n)
	}
	log := logText(w.gw)
	for _, want := range []string{
		`applied=[platforms.telegram.allowed_users]`,
		`changed settings that take effect at the next restart" settings=[gateway.connect_timeout]`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}

	// A file with a problem is refused whole: bob stays allowed.
	write("platforms:\n  telegram:\n    allowed_users: \"1001\"\nstreaming:\n  enabled: maybe\n")
	syscall.Kill(pid, syscall.SIGHUP)
	w.waitFor("the refusal in the log", func() bool {
		return strings.Contains(logText(w.gw), "SIGHUP: the configuration has problems; the running settings stay")
	})
	time.Sleep(200 * time.Millisecond) // the refused reload has nothing to apply after its log line
	before := len(w.tg.BotMessages(bobChat.ID))
	w.tg.Inject(telegramtest.Incoming{Chat: bobChat, From: bob, Text: "still"})
	w.waitFor("bob's answer after the refused reload", func() bool { return len(w.tg.BotMessages(bobChat.ID)) > before })
}

// logText is what the gateway wrote to its log file so far.
func logText(g *gateway) string {
	f, ok := g.log.(*os.File)
	if !ok {
		return ""
	}
	out, _ := os.ReadFile(f.Name())
	return string(out)
}
