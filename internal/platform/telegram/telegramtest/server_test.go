package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseHTML(t *testing.T) {
	cases := []struct {
		in, text, err string
		entities      []Entity
	}{
		{in: "plain", text: "plain"},
		{in: "<b>bold</b> &lt;&gt;&amp;&quot;&#65;&#x42;", text: `bold <>&"AB`, entities: []Entity{{Type: "bold", Offset: 0, Length: 4}}},
		{in: "😀<i>x</i>", text: "😀x", entities: []Entity{{Type: "italic", Offset: 2, Length: 1}}},
		{in: `<a href="https://e.com/?a=1&amp;b=2">l</a>`, text: "l", entities: []Entity{{Type: "text_link", Offset: 0, Length: 1, URL: "https://e.com/?a=1&b=2"}}},
		{in: `<pre><code class="language-go">x</code></pre>`, text: "x", entities: []Entity{{Type: "pre", Offset: 0, Length: 1, Language: "go"}}},
		{in: `<blockquote expandable>q</blockquote>`, text: "q", entities: []Entity{{Type: "expandable_blockquote", Offset: 0, Length: 1}}},
		{in: `<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>`, text: "st", entities: []Entity{{Type: "spoiler", Offset: 0, Length: 1}, {Type: "spoiler", Offset: 1, Length: 1}}},
		{in: "<b><i>x</i></b>", text: "x", entities: []Entity{{Type: "bold", Offset: 0, Length: 1}, {Type: "italic", Offset: 0, Length: 1}}},
		{in: "<b></b>x", text: "x"},
		{in: "<p>x</p>", err: `Unsupported start tag "p" at byte offset 0`},
		{in: "a < b", err: `Unsupported start tag "" at byte offset 2`},
		{in: "<b>x", err: `Can't find end tag corresponding to start tag "b"`},
		{in: "x</b>", err: "Unexpected end tag at byte offset 1"},
		{in: "<b>x</i>", err: `Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{in: "<b x", err: "Unclosed start tag at byte offset 0"},
		{in: "a & b", err: "Unsupported HTML entity at byte offset 2"},
		{in: "&nbsp;", err: "Unsupported HTML entity at byte offset 0"},
		{in: "<span>x</span>", err: `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{in: "<code><b>x</b></code>", err: `Tag "b" inside "code" is not supported at byte offset 6`},
		{in: "<blockquote><blockquote>x</blockquote></blockquote>", err: "Nested blockquotes are not supported at byte offset 12"},
	}
	for _, c := range cases {
		text, entities, err := ParseHTML(c.in)
		switch {
		case c.err != "":
			if err == nil || err.Error() != "can't parse entities: "+c.err {
				t.Errorf("ParseHTML(%q) error %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("ParseHTML(%q): %v", c.in, err)
		case text != c.text || !equalEntities(entities, c.entities):
			t.Errorf("ParseHTML(%q) = %q %+v, want %q %+v", c.in, text, entities, c.text, c.entities)
		}
	}
}

func equalEntities(a, b []Entity) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Offset != b[i].Offset || a[i].Length != b[i].Length || a[i].URL != b[i].URL || a[i].Language != b[i].Language {
			return false
		}
	}
	return true
}

// call makes an API call with a JSON body and decodes the answer.
func call(t *testing.T, s *Server, method string, body map[string]any) (response, json.RawMessage) {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/"+method, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct {
		response
		Result json.RawMessage `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw.OK != (resp.StatusCode == 200) || (!raw.OK && raw.ErrorCode != resp.StatusCode) {
		t.Errorf("%s: HTTP %d with ok=%v error_code=%d", method, resp.StatusCode, raw.OK, raw.ErrorCode)
	}
	return raw.response, raw.Result
}

var (
	user = User{ID: 7, FirstName: "U", Username: "user"}
	dm   = Chat{ID: 7, Type: Private, FirstName: "U"}
	grp  = Chat{ID: -100, Type: Supergroup, Title: "G"}
)

func TestAuthAndUnknownMethod(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	resp, err := http.Get(s.URL + "/bot1:wrong/getMe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if r, _ := call(t, s, "noSuchMethod", nil); r.ErrorCode != 404 || r.Description != "Not Found" {
		t.Errorf("unknown method: %+v", r)
	}
	r, res := call(t, s, "getMe", nil)
	var me User
	_ = json.Unmarshal(res, &me)
	if !r.OK || me.ID != 123456789 || !me.IsBot || me.Username != "herald_bot" {
		t.Errorf("getMe: %+v %s", r, res)
	}
}

func TestGetUpdatesOffsetAndLongPoll(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	in1 := s.Inject(Incoming{Chat: dm, From: user, Text: "hi @herald_bot /start"})
	_, res := call(t, s, "getUpdates", map[string]any{"timeout": 0})
	var ups []Update
	_ = json.Unmarshal(res, &ups)
	if len(ups) != 1 || ups[0].UpdateID != in1.UpdateID || ups[0].Message.Text != "hi @herald_bot /start" {
		t.Fatalf("updates %s", res)
	}
	if e := ups[0].Message.Entities; len(e) != 2 || e[0] != (Entity{Type: "mention", Offset: 3, Length: 11}) || e[1] != (Entity{Type: "bot_command", Offset: 15, Length: 6}) {
		t.Errorf("entities %+v", e)
	}
	// Not confirmed yet: delivered again.
	_, res = call(t, s, "getUpdates", map[string]any{"offset": in1.UpdateID})
	_ = json.Unmarshal(res, &ups)
	if len(ups) != 1 {
		t.Errorf("unconfirmed update not delivered again: %s", res)
	}

	// A long poll returns as soon as an update comes.
	done := make(chan []Update, 1)
	go func() {
		_, res := call(t, s, "getUpdates", map[string]any{"offset": in1.UpdateID + 1, "timeout": 50})
		var ups []Update
		_ = json.Unmarshal(res, &ups)
		done <- ups
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_ = s.WaitFor(ctx, func() bool { return s.Confirmed() == in1.UpdateID+1 })
	in2 := s.Inject(Incoming{Chat: dm, From: user, Text: "second"})
	select {
	case ups := <-done:
		if len(ups) != 1 || ups[0].UpdateID != in2.UpdateID {
			t.Errorf("long poll returned %+v", ups)
		}
	case <-ctx.Done():
		t.Fatal("the long poll did not return")
	}
	if s.Confirmed() != in1.UpdateID+1 {
		t.Errorf("confirmed %d", s.Confirmed())
	}
	// An empty poll with a timeout of 0 returns at once.
	_, res = call(t, s, "getUpdates", map[string]any{"offset": in2.UpdateID + 1})
	if string(res) != "[]" {
		t.Errorf("empty poll: %s", res)
	}
}

func TestSecondPollEndsTheFirstWithAConflict(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	first := make(chan response, 1)
	go func() {
		r, _ := call(t, s, "getUpdates", map[string]any{"timeout": 50})
		first <- r
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_ = s.WaitFor(ctx, func() bool { return len(s.CallsOf("getUpdates")) == 1 })
	call(t, s, "getUpdates", map[string]any{"timeout": 0})
	if r := <-first; r.ErrorCode != 409 || !strings.HasPrefix(r.Description, "Conflict: terminated by other getUpdates request") {
		t.Errorf("first poll: %+v", r)
	}
}

func TestMessagesAndLimits(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(grp)
	r, res := call(t, s, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "<b>hi</b>", "parse_mode": "HTML"})
	var m Message
	_ = json.Unmarshal(res, &m)
	if !r.OK || m.Text != "hi" || m.From.ID != s.Bot.ID || len(m.Entities) != 1 {
		t.Fatalf("sendMessage: %+v %s", r, res)
	}
	edit := func(text, mode string) response {
		r, _ := call(t, s, "editMessageText", map[string]any{"chat_id": grp.ID, "message_id": m.MessageID, "text": text, "parse_mode": mode})
		return r
	}
	if r := edit("<b>hi</b>", "HTML"); !strings.HasPrefix(r.Description, "Bad Request: message is not modified") {
		t.Errorf("identical edit: %+v", r)
	}
	if r := edit("hi", ""); !r.OK {
		t.Errorf("same text without the bold is a change: %+v", r)
	}
	if r := edit("<x>", "HTML"); r.Description != `Bad Request: can't parse entities: Unsupported start tag "x" at byte offset 0` {
		t.Errorf("bad HTML: %+v", r)
	}
	long := strings.Repeat("😀", 2048) // 4096 units: fits
	if r := edit(long, ""); !r.OK {
		t.Errorf("4096 units: %+v", r)
	}
	if r := edit(long+"x", ""); r.Description != "Bad Request: message is too long" {
		t.Errorf("4097 units: %+v", r)
	}
	if r := edit("<b>"+long+"</b>", "HTML"); r.Description != "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message" && !r.OK {
		t.Errorf("markup does not count toward the limit: %+v", r)
	}
	// JSON cannot carry invalid UTF-8; a form can.
	resp, err := http.PostForm(s.URL+"/bot"+s.Token+"/editMessageText", url.Values{
		"chat_id": {strconv.FormatInt(grp.ID, 10)}, "message_id": {strconv.Itoa(m.MessageID)}, "text": {"a\xffb"}})
	if err != nil {
		t.Fatal(err)
	}
	var bad response
	_ = json.NewDecoder(resp.Body).Decode(&bad)
	resp.Body.Close()
	if bad.Description != "Bad Request: strings must be encoded in UTF-8" {
		t.Errorf("invalid UTF-8: %+v", bad)
	}
	if r, _ := call(t, s, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "  "}); r.Description != "Bad Request: message text is empty" {
		t.Errorf("empty text: %+v", r)
	}
	if r, _ := call(t, s, "sendMessage", map[string]any{"chat_id": 55, "text": "x"}); r.Description != "Bad Request: chat not found" {
		t.Errorf("unknown chat: %+v", r)
	}
	if r, _ := call(t, s, "sendMessageDraft", map[string]any{"chat_id": grp.ID, "draft_id": 1, "text": "x"}); r.OK {
		t.Errorf("a draft in a group was accepted")
	}
	if r, _ := call(t, s, "deleteMessage", map[string]any{"chat_id": grp.ID, "message_id": m.MessageID}); !r.OK {
		t.Errorf("delete: %+v", r)
	}
	if r := edit("gone", ""); r.Description != "Bad Request: message to edit not found" {
		t.Errorf("edit after delete: %+v", r)
	}
	if r, _ := call(t, s, "deleteMessage", map[string]any{"chat_id": grp.ID, "message_id": m.MessageID}); r.Description != "Bad Request: message to delete not found" {
		t.Errorf("second delete: %+v", r)
	}
	if len(s.BotMessages(grp.ID)) != 0 {
		t.Errorf("deleted message still shown")
	}
}

func TestDraftsGoAwayWithTheMessage(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(dm)
	if r, _ := call(t, s, "sendMessageDraft", map[string]any{"chat_id": dm.ID, "draft_id": 5, "text": "<i>thinking</i>", "parse_mode": "HTML"}); !r.OK {
		t.Fatalf("draft: %+v", r)
	}
	if d := s.Drafts(dm.ID); d["5"] != "thinking" {
		t.Errorf("drafts %v", d)
	}
	call(t, s, "sendMessage", map[string]any{"chat_id": dm.ID, "text": "done"})
	if d := s.Drafts(dm.ID); len(d) != 0 {
		t.Errorf("drafts after the message: %v", d)
	}
	if r, _ := call(t, s, "sendMessageDraft", map[string]any{"chat_id": dm.ID, "draft_id": 0, "text": "x"}); r.OK {
		t.Error("draft_id 0 accepted")
	}
}

// The flood limits are token buckets: a call over one gets 429 with the
// whole seconds until it would pass, penalises the chat, and counts as a
// violation, as does anything sent to the chat during the penalty.
func TestFloodLimitsAndPenalty(t *testing.T) {
	s := NewServer(Options{Flood: &Flood{
		Chat:  platform.Bucket{Rate: 1, Burst: 5},
		Group: platform.Bucket{Rate: 1.0 / 3600, Burst: 2}, // the group's limit bites first
		Bot:   platform.Bucket{Rate: 30, Burst: 30},
	}})
	defer s.Close()
	s.AddChat(grp)
	send := func() response {
		r, _ := call(t, s, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "x"})
		return r
	}
	send()
	send()
	if len(s.Violations()) != 0 {
		t.Fatalf("violations within the limits: %+v", s.Violations())
	}
	r := send()
	if r.ErrorCode != 429 || r.Parameters == nil || r.Parameters.RetryAfter < 3590 || r.Description != "Too Many Requests: retry after "+strconv.Itoa(r.Parameters.RetryAfter) {
		t.Fatalf("third call: %+v", r)
	}
	// During the penalty everything to the chat is refused.
	if r, _ := call(t, s, "sendChatAction", map[string]any{"chat_id": grp.ID, "action": "typing"}); r.ErrorCode != 429 {
		t.Errorf("typing during the penalty: %+v", r)
	}
	if p := s.Penalties(grp.ID); len(p) != 1 || p[0].Until.Sub(p[0].From) < time.Hour-time.Second {
		t.Errorf("penalties %+v", p)
	}
	if v := s.Violations(); len(v) != 2 || v[0].Method != "sendMessage" || v[1].Method != "sendChatAction" {
		t.Errorf("violations %+v, want the third send and the typing during the penalty", v)
	}
}

func TestForcedRateLimitAndFaults(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(grp)
	s.RateLimitNth(grp.ID, "sendMessage", 2, 3)
	if r, _ := call(t, s, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "1"}); !r.OK {
		t.Fatalf("first: %+v", r)
	}
	r, _ := call(t, s, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "2"})
	if r.ErrorCode != 429 || r.Parameters.RetryAfter != 3 || r.Description != "Too Many Requests: retry after 3" {
		t.Errorf("second: %+v", r)
	}
	calls := s.CallsTo(grp.ID)
	if len(calls) != 2 || calls[1].Status != 429 || calls[1].RetryAfter != 3 || calls[1].At.IsZero() {
		t.Errorf("calls %+v", calls)
	}
	s2 := NewServer(Options{})
	defer s2.Close()
	s2.AddChat(grp)
	s2.ParseErrorNext(grp.ID, "sendMessage")
	if r, _ := call(t, s2, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "plain"}); !r.OK {
		t.Errorf("a plain text hit a parse fault: %+v", r)
	}
	if r, _ := call(t, s2, "sendMessage", map[string]any{"chat_id": grp.ID, "text": "<b>x</b>", "parse_mode": "HTML"}); !strings.Contains(r.Description, "can't parse entities") {
		t.Errorf("formatted text: %+v", r)
	}
}

func TestFilesAndMultipartForms(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	in := s.Inject(Incoming{Chat: dm, From: user, Text: "look", Photo: []byte("JPEGDATA")})
	// The library the adapter uses sends multipart forms.
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("file_id", in.PhotoFileID)
	w.Close()
	resp, err := http.Post(s.URL+"/bot"+s.Token+"/getFile", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK     bool `json:"ok"`
		Result File `json:"result"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if !r.OK || r.Result.FileSize != 8 || r.Result.FilePath == "" {
		t.Fatalf("getFile: %+v", r)
	}
	resp, err = http.Get(s.URL + "/file/bot" + s.Token + "/" + r.Result.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(data) != "JPEGDATA" {
		t.Errorf("downloaded %q", data)
	}
	// URL-encoded forms work too.
	resp, err = http.PostForm(s.URL+"/bot"+s.Token+"/getFile", url.Values{"file_id": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown file: %d", resp.StatusCode)
	}
	msgs := s.Messages(dm.ID)
	if len(msgs) != 1 || !msgs[0].Photo || msgs[0].Text != "look" {
		t.Errorf("messages %+v", msgs)
	}
}

// setMessageReaction sets one allowed emoji on a message, or clears it.
func TestMessageReactions(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddChat(grp)
	in := s.Inject(Incoming{Chat: grp, From: user, Text: "hello"})
	react := func(reaction any, message int) response {
		r, _ := call(t, s, "setMessageReaction", map[string]any{"chat_id": grp.ID, "message_id": message, "reaction": reaction})
		return r
	}
	reaction := func() string { return s.Messages(grp.ID)[0].Reaction }
	if r := react([]map[string]string{{"type": "emoji", "emoji": "👀"}}, in.MessageID); !r.OK || reaction() != "👀" {
		t.Errorf("👀: %+v, message shows %q", r, reaction())
	}
	for _, c := range []struct {
		reaction any
		message  int
		want     string
	}{
		{[]map[string]string{{"type": "emoji", "emoji": "🦖"}}, in.MessageID, "Bad Request: REACTION_INVALID"},
		{[]map[string]string{{"type": "emoji", "emoji": "👍"}, {"type": "emoji", "emoji": "👎"}}, in.MessageID, "Bad Request: REACTIONS_TOO_MANY"},
		{[]map[string]string{{"type": "emoji", "emoji": "👍"}}, in.MessageID + 100, "Bad Request: message to react not found"},
	} {
		if r := react(c.reaction, c.message); r.OK || r.Description != c.want {
			t.Errorf("%v on %d: %+v, want %q", c.reaction, c.message, r, c.want)
		}
	}
	if r := react([]map[string]string{}, in.MessageID); !r.OK || reaction() != "" {
		t.Errorf("clearing: %+v, message shows %q", r, reaction())
	}
}
