package matrix

import (
	"regexp"
	"testing"

	"github.com/herald-chat/herald/internal/chat"
)

func TestMentionRules(t *testing.T) {
	group := placement{room: "!group:hs", eventID: "$e"}
	dm := placement{dm: true, room: "!dm:hs", eventID: "$e"}
	free := placement{room: "!free:hs", eventID: "$e"}
	r := rules{requireMention: true, freeRooms: map[string]bool{"!free:hs": true}}
	cases := []struct {
		name string
		r    rules
		p    placement
		a    addressing
		want bool
	}{
		{"a DM needs no mention", r, dm, addressing{}, true},
		{"a group message without mention", r, group, addressing{}, false},
		{"a group message with a mention", r, group, addressing{mentionsBot: true}, true},
		{"a reply to the bot", r, group, addressing{repliesToBot: true}, true},
		{"a thread the bot answered in", r, group, addressing{botInThread: true}, true},
		{"a thread the bot answered in, with MATRIX_THREAD_REQUIRE_MENTION", rules{requireMention: true, threadRequireMention: true}, group, addressing{botInThread: true}, false},
		{"a command", r, group, addressing{command: true}, true},
		{"a free-response room", r, free, addressing{}, true},
		{"mentions not required", rules{requireMention: false}, group, addressing{}, true},
	}
	for _, c := range cases {
		if got := c.r.mentioned(c.p, c.a); got != c.want {
			t.Errorf("%s: mentioned = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRouting(t *testing.T) {
	top := placement{room: "!r:hs", eventID: "$msg"}
	inThread := placement{room: "!r:hs", eventID: "$msg", threadRoot: "$root"}
	dmThread := placement{dm: true, room: "!d:hs", eventID: "$msg", threadRoot: "$root"}
	dmTop := placement{dm: true, room: "!d:hs", eventID: "$msg"}
	cases := []struct {
		name     string
		r        rules
		p        placement
		mentions bool
		want     routing
	}{
		{"auto: top-level", rules{scope: ScopeAuto}, top, false, routing{chatType: chat.Group}},
		{"auto: a thread is its own session", rules{scope: ScopeAuto}, inThread, false, routing{chatType: chat.Thread, threadID: "$root", replyThread: "$root"}},
		{"auto thread: the answer starts a thread", rules{scope: ScopeAuto, autoThread: true}, top, false, routing{chatType: chat.Thread, threadID: "$msg", replyThread: "$msg"}},
		{"thread scope: every top-level message starts one", rules{scope: ScopeThread}, top, false, routing{chatType: chat.Thread, threadID: "$msg", replyThread: "$msg"}},
		{"room scope: threads share the room's session", rules{scope: ScopeRoom}, inThread, false, routing{chatType: chat.Group, replyThread: "$root"}},
		{"room scope with auto thread", rules{scope: ScopeRoom, autoThread: true}, top, false, routing{chatType: chat.Group, replyThread: "$msg"}},
		{"a DM stays a DM, answered in its thread", rules{scope: ScopeAuto, autoThread: true}, dmThread, false, routing{chatType: chat.DM, threadID: "$root", replyThread: "$root"}},
		{"auto thread leaves DMs alone", rules{scope: ScopeAuto, autoThread: true}, dmTop, true, routing{chatType: chat.DM}},
		{"DM auto thread", rules{dmAutoThread: true}, dmTop, false, routing{chatType: chat.DM, threadID: "$msg", replyThread: "$msg"}},
		{"DM mention threads: mentioned", rules{dmMentionThreads: true}, dmTop, true, routing{chatType: chat.DM, threadID: "$msg", replyThread: "$msg"}},
		{"DM mention threads: not mentioned", rules{dmMentionThreads: true}, dmTop, false, routing{chatType: chat.DM}},
	}
	for _, c := range cases {
		if got := c.r.route(c.p, c.mentions); got != c.want {
			t.Errorf("%s: route = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// Two threads of one room are two sessions; a thread is shared by its
// participants, and the room scope folds threads into the room's session.
func TestThreadsMapToSessions(t *testing.T) {
	opts := chat.SessionKeyOptions{GroupPerUser: true}
	key := func(r rules, p placement, user string) string {
		rt := r.route(p, false)
		return chat.SessionKey(chat.Source{Platform: "matrix", ChatID: p.room, ChatType: rt.chatType, ThreadID: rt.threadID, UserID: user}, opts)
	}
	auto := rules{scope: ScopeAuto}
	a := placement{room: "!r:hs", eventID: "$1", threadRoot: "$A"}
	b := placement{room: "!r:hs", eventID: "$2", threadRoot: "$B"}
	if key(auto, a, "@x:hs") == key(auto, b, "@x:hs") {
		t.Error("two threads share a session")
	}
	if key(auto, a, "@x:hs") != key(auto, a, "@y:hs") {
		t.Error("a thread's participants do not share its session")
	}
	room := rules{scope: ScopeRoom}
	if key(room, a, "@x:hs") != key(room, b, "@x:hs") {
		t.Error("with the room scope, threads do not share the room's session")
	}
}

func TestAllowedRoomsExemptDMs(t *testing.T) {
	r := rules{allowedRooms: map[string]bool{"!ok:hs": true}}
	for _, c := range []struct {
		p    placement
		want bool
	}{
		{placement{room: "!ok:hs"}, true},
		{placement{room: "!other:hs"}, false},
		{placement{room: "!other:hs", dm: true}, true},
	} {
		if got := r.roomAllowed(c.p); got != c.want {
			t.Errorf("roomAllowed(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
	if !(&rules{}).roomAllowed(placement{room: "!any:hs"}) {
		t.Error("without MATRIX_ALLOWED_ROOMS a room is not allowed")
	}
}

func TestIgnorePatterns(t *testing.T) {
	r := rules{ignore: []*regexp.Regexp{regexp.MustCompile(`^@.*bot:`), regexp.MustCompile(`^@spam:example\.org$`)}}
	for user, want := range map[string]bool{
		"@otherbot:hs":       true,
		"@spam:example.org":  true,
		"@alice:hs":          false,
		"@spam:example.orgx": false,
	} {
		if got := r.ignored(user); got != want {
			t.Errorf("ignored(%s) = %v, want %v", user, got, want)
		}
	}
}

func TestMentionDetection(t *testing.T) {
	me := identity{userID: "@herald:example.org", displayName: "Herald Bot"}
	cases := []struct {
		body, html string
		want       bool
	}{
		{"@herald:example.org what now", "", true},
		{"herald: what now", "", true},
		{"Hey Herald Bot, hi", "", true},
		{"no one here", `<a href="https://matrix.to/#/@herald:example.org">H</a>`, true},
		{"escaped pill", `<a href="https://matrix.to/#/@herald%3Aexample.org">H</a>`, true},
		{"heraldry is an art", "", false},
		{"the heralds are coming", "", false},
		{"nothing at all", "", false},
	}
	for _, c := range cases {
		if got := me.mentionedIn(c.body, c.html); got != c.want {
			t.Errorf("mentionedIn(%q, %q) = %v, want %v", c.body, c.html, got, c.want)
		}
	}
}

func TestStripLeadingMention(t *testing.T) {
	me := identity{userID: "@herald:example.org", displayName: "Herald Bot"}
	for in, want := range map[string]string{
		"herald: /status":                 "/status",
		"Herald Bot, !new":                "!new",
		"@herald:example.org hello there": "hello there",
		"@herald hi":                      "hi",
		"heraldry is an art":              "heraldry is an art",
		"herald":                          "herald",
		"tell herald: no":                 "tell herald: no",
	} {
		if got := me.stripLeadingMention(in); got != want {
			t.Errorf("stripLeadingMention(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommandsWithBangOrSlash(t *testing.T) {
	for text, want := range map[string]bool{
		"/new": true, "!new": true, "!reset please": true, "/STOP": true, "!status@herald": true, "!help": true,
		"/unknown": false, "!": false, "hello": false, "new": false,
	} {
		if got := isCommand(text); got != want {
			t.Errorf("isCommand(%q) = %v, want %v", text, got, want)
		}
	}
}
