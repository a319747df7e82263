package chat

import (
	"regexp"
	"testing"
	"time"
)

func TestSessionKey(t *testing.T) {
	dm := Source{Platform: "telegram", ChatID: "42", ChatType: DM, UserID: "42"}
	group := Source{Platform: "matrix", ChatID: "!r:s", ChatType: Group, UserID: "@a:s"}
	thread := group
	thread.ChatType, thread.ThreadID = Thread, "$t"
	other := thread
	other.UserID = "@b:s"
	defaults := SessionKeyOptions{GroupPerUser: true}
	cases := []struct {
		name string
		src  Source
		opt  SessionKeyOptions
		want string
	}{
		{"dm by chat", dm, defaults, "telegram:dm:42"},
		{"group per user", group, defaults, "matrix:group:!r:s:@a:s"},
		{"group shared", group, SessionKeyOptions{}, "matrix:group:!r:s"},
		{"thread shared", thread, defaults, "matrix:thread:!r:s:$t"},
		{"thread shared, other user", other, defaults, "matrix:thread:!r:s:$t"},
		{"thread per user", other, SessionKeyOptions{GroupPerUser: true, ThreadPerUser: true}, "matrix:thread:!r:s:$t:@b:s"},
	}
	for _, c := range cases {
		if got := SessionKey(c.src, c.opt); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCommand(t *testing.T) {
	for text, want := range map[string]string{
		"/new": "new", "!reset": "reset", " /STOP now ": "stop", "/status@herald_bot": "status", "!help": "help",
		"/sethome": "sethome", "/set-home@herald_bot": "sethome",
		"/unknown": "", "hello": "", "/": "", "new": "", "!!new": "", "/ new": "",
	} {
		got, ok := Command(text)
		if got != want || ok != (want != "") {
			t.Errorf("Command(%q) = %q, %v; want %q", text, got, ok, want)
		}
	}
}

func TestNewSessionIDShape(t *testing.T) {
	now := time.Date(2026, 6, 23, 19, 54, 26, 0, time.UTC)
	shape := regexp.MustCompile(`^20260623_195426_[0-9a-f]{6}$`)
	a, b := NewSessionID(now), NewSessionID(now)
	if !shape.MatchString(a) || !shape.MatchString(b) {
		t.Errorf("ids %q, %q do not have the shape YYYYMMDD_HHMMSS_<6 hex>", a, b)
	}
	if a == b {
		t.Errorf("two ids in the same second are equal: %q", a)
	}
}
