package discord

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

func TestSnowflakes(t *testing.T) {
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	id := snowflakeAt(at)
	if got := snowflakeTime(id); !got.Equal(at) {
		t.Errorf("snowflakeTime(snowflakeAt(%s)) = %s", at, got)
	}
	// Discord's documented example: 175928847299117063 was made at
	// 2016-04-30 11:18:25.796 UTC.
	if got := snowflakeTime("175928847299117063"); !got.Equal(time.Date(2016, 4, 30, 11, 18, 25, 796e6, time.UTC)) {
		t.Errorf("the docs' example decodes to %s", got)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"9", "10", -1}, {"175928847299117063", "175928847299117063", 0}, {"1000000000000000000", "999999999999999999", 1}} {
		if got := compareSnowflakes(c.a, c.b); got != c.want {
			t.Errorf("compareSnowflakes(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestSeenKeepsRecentConversationsOnly(t *testing.T) {
	state := platformtest.MemState{}
	now := time.Now()
	s, err := loadSeen(t.Context(), state, "k", platformtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	old := snowflakeAt(now.Add(-2 * recentConversation))
	fresh := snowflakeAt(now.Add(-time.Minute))
	s.saw(t.Context(), "old", old)
	s.saw(t.Context(), "fresh", fresh)
	s.saw(t.Context(), "fresh", old) // an older message never moves a position back
	again, err := loadSeen(t.Context(), state, "k", platformtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	got := again.begin(now)
	if len(got) != 1 || got["fresh"] != fresh {
		t.Errorf("recent = %v, want only the fresh conversation at its last message", got)
	}
	for i := range maxConversations + 10 {
		s.saw(t.Context(), strings.Repeat("c", i+1), snowflakeAt(now.Add(time.Duration(i)*time.Millisecond)))
	}
	if n := len(s.begin(now)); n != maxConversations {
		t.Errorf("%d conversations kept, want the bound %d", n, maxConversations)
	}
}

// While a conversation is read back, the messages the gateway dispatches
// do not move its kept position: a stop in the middle reads the rest again.
func TestSeenWhileReadingBack(t *testing.T) {
	state := platformtest.MemState{}
	now := time.Now()
	s, _ := loadSeen(t.Context(), state, "k", platformtest.Logger(t))
	id := func(ms int) string { return snowflakeAt(now.Add(time.Duration(ms) * time.Millisecond)) }
	s.saw(t.Context(), "c", id(1))
	s.begin(now)
	s.saw(t.Context(), "c", id(10))     // a live message while reading back
	s.readBack(t.Context(), "c", id(2)) // the first message missed
	stopped, _ := loadSeen(t.Context(), state, "k", platformtest.Logger(t))
	if got := stopped.begin(now)["c"]; got != id(2) {
		t.Errorf("kept position %s mid-way, want the last read back %s", got, id(2))
	}
	s.done(t.Context(), "c")
	again, _ := loadSeen(t.Context(), state, "k", platformtest.Logger(t))
	if got := again.begin(now)["c"]; got != id(10) {
		t.Errorf("kept position %s once read back, want the live message's %s", got, id(10))
	}
}

func TestRewriteSendsDiscordgoToTheConfiguredSite(t *testing.T) {
	var got []string
	r, err := newRewrite("http://127.0.0.1:9/proxy", roundTrip(func(req *http.Request) (*http.Response, error) {
		got = append(got, req.Method+" "+req.URL.String())
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		discordgo.EndpointGateway,
		discordgo.EndpointChannelMessage("1", "2"),
		discordgo.EndpointMessageReaction("1", "2", "👀", "@me"),
		"https://cdn.discordapp.com/attachments/1/2/cat.png",
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := r.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"GET http://127.0.0.1:9/proxy/api/v10/gateway/bot",
		"GET http://127.0.0.1:9/proxy/api/v10/channels/1/messages/2",
		"GET http://127.0.0.1:9/proxy/api/v10/channels/1/messages/2/reactions/%F0%9F%91%80/@me",
		"GET https://cdn.discordapp.com/attachments/1/2/cat.png",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests went to\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := newRewrite("discord.com", nil); err == nil {
		t.Error("a base URL without a scheme was accepted")
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCloseCodesThatDoNotMend(t *testing.T) {
	for code, want := range map[int]string{4004: "DISCORD_BOT_TOKEN", 4014: "MESSAGE CONTENT INTENT", 4013: "4013"} {
		err := closeError(&websocket.CloseError{Code: code})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("close %d: %v, want an error naming %s", code, err, want)
		}
	}
	for _, err := range []error{&websocket.CloseError{Code: 4000}, &websocket.CloseError{Code: 1006}, errors.New("EOF")} {
		if closeError(err) != nil {
			t.Errorf("%v is taken as fatal; it mends by reconnecting", err)
		}
	}
}

func TestThreadName(t *testing.T) {
	long := strings.Repeat("é", 150)
	for in, want := range map[string]string{
		"plan the trip\nwith details": "plan the trip",
		"  ":                          "Conversation",
		long:                          strings.Repeat("é", 99) + "…",
	} {
		if got := threadName(in); got != want {
			t.Errorf("threadName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMentionRules(t *testing.T) {
	a := &Adapter{opts: Options{RequireMention: true, FreeResponseChannels: []string{"free"}}}
	const bot = "b"
	channel := place{channel: "c"}
	for _, c := range []struct {
		name string
		p    place
		ad   addressing
		want bool
	}{
		{"dm", place{dm: true, channel: "d"}, addressing{}, true},
		{"channel, nothing", channel, addressing{}, false},
		{"channel, mention", channel, addressing{mentionsBot: true}, true},
		{"channel, reply to the bot", channel, addressing{repliesToBot: true}, true},
		{"channel, command", channel, addressing{command: true}, true},
		{"free channel", place{channel: "free"}, addressing{}, true},
		{"thread of a free channel", place{channel: "t", parent: "free"}, addressing{}, true},
		{"thread the bot started", place{channel: "t", parent: "c", ownedBy: bot}, addressing{}, true},
		{"thread someone else started", place{channel: "t", parent: "c", ownedBy: "u"}, addressing{}, false},
	} {
		if got := a.mentioned(c.p, c.ad, bot); got != c.want {
			t.Errorf("%s: mentioned = %v, want %v", c.name, got, c.want)
		}
	}
	a.opts.RequireMention = false
	if !a.mentioned(channel, addressing{}, bot) {
		t.Error("with DISCORD_REQUIRE_MENTION=false a channel message is not taken")
	}
}

func TestTargets(t *testing.T) {
	thread := chat.Target{ChatID: "c", ThreadID: "m", ReplyTo: "m"}
	inThread := chat.Target{ChatID: "c", ThreadID: "t", ReplyTo: "m"}
	channel := chat.Target{ChatID: "c", ReplyTo: "m"}
	if !startsThread(thread) || channelOf(thread) != "m" || askedIn(thread) != "c" {
		t.Errorf("an auto-thread target: starts %v, channel %s, asked in %s", startsThread(thread), channelOf(thread), askedIn(thread))
	}
	if startsThread(inThread) || channelOf(inThread) != "t" || askedIn(inThread) != "t" {
		t.Error("a target in an existing thread is misread")
	}
	if startsThread(channel) || channelOf(channel) != "c" || askedIn(channel) != "c" {
		t.Error("a channel target is misread")
	}
	// The first message of a forum post has the post's id.
	post := chat.Target{ChatID: "p", ThreadID: "p", ReplyTo: "p"}
	if startsThread(post) || channelOf(post) != "p" || askedIn(post) != "p" {
		t.Error("a forum post's first message is taken for one whose answer starts a thread")
	}
}

// Auto-thread starts threads in text and announcement channels only.
func TestAutoThreadKinds(t *testing.T) {
	a := &Adapter{opts: Options{AutoThread: true, NoThreadChannels: []string{"n"}}}
	for _, c := range []struct {
		p    place
		want bool
	}{
		{place{kind: discordgo.ChannelTypeGuildText, channel: "c"}, true},
		{place{kind: discordgo.ChannelTypeGuildNews, channel: "c"}, true},
		{place{kind: discordgo.ChannelTypeGuildVoice, channel: "c"}, false},
		{place{kind: discordgo.ChannelTypeGuildPublicThread, channel: "t", parent: "c"}, false},
		{place{kind: discordgo.ChannelTypeDM, dm: true, channel: "d"}, false},
		{place{kind: discordgo.ChannelTypeGuildText, channel: "n"}, false},
	} {
		if got := a.autoThread(c.p); got != c.want {
			t.Errorf("autoThread(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
}

// Interaction tokens and signed links never show in an error's text.
func TestRedact(t *testing.T) {
	a := &Adapter{}
	err := a.redact(errors.New(`Post "https://discord.com/api/v9/interactions/123/aW50ZXJhY3Rpb246c2VjcmV0/callback": EOF; ` +
		`Patch "https://discord.com/api/v9/webhooks/456/c2VjcmV0LXRva2Vu/messages/@original": EOF; ` +
		`Get "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=1&is=2&hm=signature": EOF`))
	for _, secret := range []string{"aW50ZXJhY3Rpb246c2VjcmV0", "c2VjcmV0LXRva2Vu", "signature"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q shows in %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "/interactions/123/<token>/callback") || !strings.Contains(err.Error(), "cat.png?…") {
		t.Errorf("redacted to %v", err)
	}
}

// After a global 429, no call reaches Discord until its Retry-After has
// passed; each gets a 429 that says how long is left.
func TestGlobalRateLimitHoldsEveryCall(t *testing.T) {
	calls := 0
	g := &globalHold{next: roundTrip(func(req *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Body: http.NoBody, Request: req,
				Header: http.Header{"Retry-After": {"30"}, "X-Ratelimit-Global": {"true"}}}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})}
	for _, path := range []string{"/api/v10/channels/1/messages", "/api/v10/channels/2/messages/3"} {
		req, _ := http.NewRequest(http.MethodPost, "http://discord.test"+path, nil)
		resp, err := g.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s: %v %v, want 429", path, resp.StatusCode, err)
		}
		var body struct {
			RetryAfter float64 `json:"retry_after"`
			Global     bool    `json:"global"`
		}
		if path != "/api/v10/channels/1/messages" {
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !body.Global || body.RetryAfter < 29 || body.RetryAfter > 30 {
				t.Errorf("held answer %+v (%v), want global with about 30 s left", body, err)
			}
		}
	}
	if calls != 1 {
		t.Errorf("%d calls reached Discord during the global limit, want only the first", calls)
	}
}
