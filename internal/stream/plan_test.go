package stream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

const (
	testCursor = " ▉"
	searching  = "🔍 searching…"
)

// words is n copies of w separated by single spaces.
func words(n int, w string) string {
	return strings.TrimSpace(strings.Repeat(w+" ", n))
}

// A text too long for one intermediate message of smallCaps: its first
// paragraph fits the stream limit (132), the two together do not.
var (
	para1    = words(20, "alpha") // 119 runes
	para2    = words(10, "beta")  // 49 runes
	longText = para1 + "\n\n" + para2
)

// smallCaps is an editing chat with a cursor and a small limit.
func smallCaps() platform.Caps {
	return platform.Caps{MaxLength: 200, Count: format.Runes, Edit: true, Cursor: true}
}

// cloneScreen copies s and the messages it points to.
func cloneScreen(s *screen) screen {
	c := screen{drafted: s.drafted}
	for _, m := range s.sealed {
		cm := *m
		c.sealed = append(c.sealed, &cm)
	}
	if s.active != nil {
		a := *s.active
		c.active = &a
	}
	return c
}

// sealedAfter is a message holding the first piece of v, sealed.
func sealedAfter(t *testing.T, sh shape, v string, limit int) *message {
	t.Helper()
	pieces := sh.layout(v, nil, limit)
	if len(pieces) < 2 {
		t.Fatalf("layout of %q in %d gave %d pieces, want several", v, limit, len(pieces))
	}
	m := &message{id: "sealed"}
	m.record(pieces[0].text, pieces[0], v)
	return m
}

// chooseMode uses drafts where the chat has them and the transport allows
// them, edits where messages can be edited, and nothing otherwise.
func TestChooseMode(t *testing.T) {
	caps := []platform.Caps{
		{},                        // neither
		{Edit: true},              // edits only
		{Draft: true},             // drafts only
		{Draft: true, Edit: true}, // both
	}
	tests := []struct {
		enabled   bool
		transport string
		want      [4]mode // for each of caps, in order
	}{
		{true, "auto", [4]mode{modeOff, modeEdit, modeDraft, modeDraft}},
		{true, "", [4]mode{modeOff, modeEdit, modeDraft, modeDraft}},
		{true, "draft", [4]mode{modeOff, modeEdit, modeDraft, modeDraft}},
		{true, "edit", [4]mode{modeOff, modeEdit, modeOff, modeEdit}},
		{true, "off", [4]mode{modeOff, modeOff, modeOff, modeOff}},
		{false, "auto", [4]mode{modeOff, modeOff, modeOff, modeOff}},
		{false, "draft", [4]mode{modeOff, modeOff, modeOff, modeOff}},
		{false, "edit", [4]mode{modeOff, modeOff, modeOff, modeOff}},
	}
	for _, tc := range tests {
		for i, c := range caps {
			o := Options{Enabled: tc.enabled, Transport: tc.transport}
			if got := chooseMode(o, c); got != tc.want[i] {
				t.Errorf("enabled=%v transport=%q draft=%v edit=%v: mode %d, want %d",
					tc.enabled, tc.transport, c.Draft, c.Edit, got, tc.want[i])
			}
		}
	}
}

// next plans one step at a time from what the screen shows, and never
// changes the screen itself.
func TestShapeNext(t *testing.T) {
	noCursor := smallCaps()
	noCursor.Cursor = false
	drafts := smallCaps()
	drafts.Draft = true
	sealed := func() []*message {
		return []*message{{id: "1", shown: para1, upTo: para1}}
	}
	type want struct {
		kind     opKind
		text     string
		seal     bool
		onActive bool // the step concerns the active message
		start    int  // of the piece shown
	}
	tests := []struct {
		name      string
		caps      platform.Caps
		mode      mode
		s         screen
		v, status string
		want      *want // nil: nothing to do
	}{
		{
			name: "first text is sent with the cursor",
			caps: smallCaps(), mode: modeEdit,
			v:    "Hello world",
			want: &want{kind: opSend, text: "Hello world" + testCursor},
		},
		{
			name: "the status line goes under the text",
			caps: smallCaps(), mode: modeEdit,
			v: "Hello world", status: searching,
			want: &want{kind: opSend, text: "Hello world\n\n" + searching + testCursor},
		},
		{
			name: "no cursor where the platform shows none",
			caps: noCursor, mode: modeEdit,
			v: "Hello world", status: searching,
			want: &want{kind: opSend, text: "Hello world\n\n" + searching},
		},
		{
			name: "leading blank lines are not shown",
			caps: smallCaps(), mode: modeEdit,
			v:    "\n\n  Hello",
			want: &want{kind: opSend, text: "Hello" + testCursor, start: 4},
		},
		{
			name: "the active message shows the text: nothing to do",
			caps: smallCaps(), mode: modeEdit,
			s: screen{active: &message{id: "1", shown: "Hello world" + testCursor}},
			v: "Hello world",
		},
		{
			name: "grown text edits the active message",
			caps: smallCaps(), mode: modeEdit,
			s:    screen{active: &message{id: "1", shown: "Hello" + testCursor}},
			v:    "Hello world",
			want: &want{kind: opEdit, text: "Hello world" + testCursor, onActive: true},
		},
		{
			name: "a new status alone edits the active message",
			caps: smallCaps(), mode: modeEdit,
			s: screen{active: &message{id: "1", shown: "Hello world" + testCursor}},
			v: "Hello world", status: searching,
			want: &want{kind: opEdit, text: "Hello world\n\n" + searching + testCursor, onActive: true},
		},
		{
			name: "text over the stream limit: the first piece goes out sealed, bare",
			caps: smallCaps(), mode: modeEdit,
			v: longText, status: searching,
			want: &want{kind: opSend, text: para1, seal: true},
		},
		{
			name: "an active message showing the start of a long text is edited and sealed",
			caps: smallCaps(), mode: modeEdit,
			s:    screen{active: &message{id: "1", shown: "alpha alpha" + testCursor}},
			v:    longText,
			want: &want{kind: opEdit, text: para1, seal: true, onActive: true},
		},
		{
			name: "an active message already showing the complete first piece is sealed",
			caps: smallCaps(), mode: modeEdit,
			s:    screen{active: &message{id: "1", shown: para1}},
			v:    longText,
			want: &want{kind: opSeal, text: para1, onActive: true},
		},
		{
			name: "after a sealed message the rest goes to a new one",
			caps: smallCaps(), mode: modeEdit,
			s:    screen{sealed: sealed()},
			v:    longText,
			want: &want{kind: opSend, text: para2 + testCursor, start: len(para1) + 2},
		},
		{
			name: "text not continuing the sealed messages shows nothing",
			caps: smallCaps(), mode: modeEdit,
			s: screen{sealed: sealed()},
			v: "Something else entirely", status: searching,
		},
		{
			name: "blank text and no status: nothing to do",
			caps: smallCaps(), mode: modeEdit,
			v: " \n\t",
		},
		{
			name: "a status before any text gets a message of its own",
			caps: smallCaps(), mode: modeEdit,
			v: " \n", status: searching,
			want: &want{kind: opSend, text: searching + testCursor},
		},
		{
			name: "the status message already shows the status",
			caps: smallCaps(), mode: modeEdit,
			s:      screen{active: &message{id: "1", shown: searching + testCursor}},
			status: searching,
		},
		{
			name: "the status message shows another status",
			caps: smallCaps(), mode: modeEdit,
			s:      screen{active: &message{id: "1", shown: "📖 reading…" + testCursor}},
			status: searching,
			want:   &want{kind: opEdit, text: searching + testCursor, onActive: true},
		},
		{
			name: "no status message once messages are sealed",
			caps: smallCaps(), mode: modeEdit,
			s: screen{sealed: sealed()},
			v: para1, status: searching,
		},
		{
			name: "drafts show the text with the cursor",
			caps: drafts, mode: modeDraft,
			v:    "Hello world",
			want: &want{kind: opDraft, text: "Hello world" + testCursor},
		},
		{
			name: "the draft already shows the text",
			caps: drafts, mode: modeDraft,
			s: screen{drafted: "Hello world" + testCursor},
			v: "Hello world",
		},
		{
			name: "a long text's draft shows its last piece",
			caps: drafts, mode: modeDraft,
			s: screen{drafted: "Hello world" + testCursor},
			v: longText, status: searching,
			want: &want{kind: opDraft, text: para2 + "\n\n" + searching + testCursor, start: len(para1) + 2},
		},
		{
			name: "a status before any text is drafted",
			caps: drafts, mode: modeDraft,
			status: searching,
			want:   &want{kind: opDraft, text: searching + testCursor},
		},
		{
			name: "the draft already shows the status",
			caps: drafts, mode: modeDraft,
			s:      screen{drafted: searching + testCursor},
			status: searching,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sh := newShape(tc.caps, Options{Cursor: testCursor}, false)
			before := cloneScreen(&tc.s)
			o := sh.next(tc.mode, &tc.s, tc.v, tc.status)
			if after := cloneScreen(&tc.s); !reflect.DeepEqual(before, after) {
				t.Errorf("next changed the screen:\nbefore %+v\nafter  %+v", before, after)
			}
			if tc.want == nil {
				if o != nil {
					t.Fatalf("next = %+v, want nothing", *o)
				}
				return
			}
			if o == nil {
				t.Fatalf("next = nil, want %+v", *tc.want)
			}
			if o.kind != tc.want.kind || o.text != tc.want.text || o.seal != tc.want.seal {
				t.Errorf("next = kind %d text %q seal %v, want kind %d text %q seal %v",
					o.kind, o.text, o.seal, tc.want.kind, tc.want.text, tc.want.seal)
			}
			if tc.want.onActive && (o.msg == nil || o.msg != tc.s.active) {
				t.Errorf("next concerns message %p, want the active one %p", o.msg, tc.s.active)
			}
			if !tc.want.onActive && o.msg != nil {
				t.Errorf("next concerns message %+v, want none", *o.msg)
			}
			if tc.v != "" && o.p.start != tc.want.start {
				t.Errorf("piece starts at %d, want %d", o.p.start, tc.want.start)
			}
			if tc.v != "" && !strings.HasPrefix(o.text, strings.TrimRight(tc.v[o.p.start:o.p.end], " \n")) {
				t.Errorf("text %q does not hold its piece %q", o.text, tc.v[o.p.start:o.p.end])
			}
		})
	}
}

// A code block cut by a sealed message is reopened, with its info string,
// at the start of the next piece.
func TestLayoutReopensFence(t *testing.T) {
	sh := newShape(smallCaps(), Options{}, false)
	var code strings.Builder
	for i := range 30 {
		code.WriteString("fmt.Println(" + strings.Repeat("x", i) + ")\n")
	}
	v := "Here is the code:\n\n```go\n" + code.String() + "```\n\nThat is all."
	whole := sh.layout(v, nil, 200)
	if len(whole) < 2 || whole[0].fence != "```go" || !strings.HasSuffix(whole[0].text, "\n```") {
		t.Fatalf("the first piece should end inside the code block, closed: %+v", whole)
	}
	m := sealedAfter(t, sh, v, 200)
	if m.fence != "```go" {
		t.Fatalf("sealed message records fence %q, want ```go", m.fence)
	}
	rest := sh.layout(v, []*message{m}, 200)
	if len(rest) == 0 || !strings.HasPrefix(rest[0].text, "```go\n") {
		t.Fatalf("the piece after the sealed message does not reopen the fence: %+v", rest)
	}
	if rest[0].text != whole[1].text || rest[0].start != whole[1].start || rest[0].end != whole[1].end {
		t.Errorf("continuing after the sealed message gives %+v, laying out the whole text gives %+v", rest[0], whole[1])
	}
	if len(rest) < 2 || rest[0].fence != "```go" {
		t.Fatalf("the code block should go on over two more pieces: %+v", rest)
	}
	checkPieces(t, "after the sealed message", v, len(m.upTo), m.fence+"\n", rest, format.Runes, 200)

	// A text that fits but stops inside a code block notes its fence too.
	if p := sh.layout("Look:\n~~~~ sh\nls -l", nil, 200); len(p) != 1 || p[0].fence != "~~~~ sh" {
		t.Errorf("a single piece open in a code block: %+v, want fence ~~~~ sh", p)
	}
}

// Continuing after a sealed message keeps the indentation of the first
// line, as laying out the whole text does: in a code block (Python) or a
// nested list it is meaningful.
func TestLayoutKeepsIndentationAfterSealed(t *testing.T) {
	sh := newShape(smallCaps(), Options{}, false)
	var code strings.Builder
	code.WriteString("def f():\n")
	for i := range 20 {
		code.WriteString("    print(" + strings.Repeat("x", i) + ")\n")
	}
	v := "```python\n" + code.String() + "```\n"
	whole := sh.layout(v, nil, 200)
	m := sealedAfter(t, sh, v, 200)
	rest := sh.layout(v, []*message{m}, 200)
	if len(rest) == 0 {
		t.Fatal("nothing laid out after the sealed message")
	}
	if rest[0].text != whole[1].text {
		t.Errorf("after the sealed message the next piece is\n%q\nlaying out the whole text gives\n%q", rest[0].text, whole[1].text)
	}
}

// layout gives nothing for a text that does not continue what the sealed
// messages show, or that adds only whitespace to it.
func TestLayoutNeedsContinuation(t *testing.T) {
	sh := newShape(smallCaps(), Options{}, false)
	m := &message{id: "1", shown: "Hello there", upTo: "Hello there"}
	for _, v := range []string{"Hallo there, and more", "Hello", "", "Hello there \n\n "} {
		if got := sh.layout(v, []*message{m}, 100); got != nil {
			t.Errorf("layout(%q) after %q = %+v, want nothing", v, m.upTo, got)
		}
	}
	if got := sh.layout("Hello there, and more", []*message{m}, 100); len(got) != 1 || got[0].text != ", and more" {
		t.Errorf("layout of a continuation = %+v, want one piece \", and more\"", got)
	}
}

// Every piece fits the limit as the platform counts, and its offsets point
// at the part of the text it holds: pieces follow each other with only
// whitespace between them and cover the whole text.
func TestLayoutPieces(t *testing.T) {
	var b strings.Builder
	b.WriteString("Intro paragraph with some words in it.\n\n")
	b.WriteString(words(40, "lorem") + "\n\n")
	b.WriteString("```sh\n")
	for i := range 15 {
		b.WriteString("echo line " + strings.Repeat("é", i) + "\n")
	}
	b.WriteString("```\n\n")
	b.WriteString(strings.Repeat("ü", 150) + "\n\n") // no place to cut
	b.WriteString(strings.Repeat("😀 ", 40) + "\n\nEnd.  \n")
	v := b.String()
	for _, c := range []format.Counting{format.Runes, format.Bytes, format.UTF16} {
		for _, limit := range []int{60, 97, 200} {
			sh := newShape(platform.Caps{Count: c}, Options{}, false)
			pieces := sh.layout(v, nil, limit)
			if len(pieces) < 2 {
				t.Fatalf("count %d limit %d: %d pieces, want several", c, limit, len(pieces))
			}
			checkPieces(t, fmt.Sprintf("count %d limit %d", c, limit), v, 0, "", pieces, c, limit)
		}
	}
}

// checkPieces checks that pieces of v, laid out after offset from with
// reopen (a fence line and "\n", or "") to start the first, each fit limit
// counted as c and hold their part of the text, and that they follow one
// another with only whitespace between them up to the end of v.
func checkPieces(t *testing.T, name, v string, from int, reopen string, pieces []piece, c format.Counting, limit int) {
	t.Helper()
	prev := from
	for i, p := range pieces {
		if n := format.Length(p.text, c); n > limit {
			t.Errorf("%s: piece %d is %d long", name, i, n)
		}
		if !utf8.ValidString(p.text) {
			t.Errorf("%s: piece %d cuts a character: %q", name, i, p.text)
		}
		if p.start < prev || p.end < p.start || p.end > len(v) {
			t.Fatalf("%s: piece %d spans [%d,%d) after %d", name, i, p.start, p.end, prev)
		}
		if gap := v[prev:p.start]; strings.Trim(gap, " \t\r\n") != "" {
			t.Errorf("%s: text %q skipped before piece %d", name, gap, i)
		}
		body := v[p.start:p.end]
		if !strings.HasPrefix(p.text, reopen+body) {
			t.Errorf("%s: piece %d is %q, want it to start with %q", name, i, p.text, reopen+body)
		} else if tail := strings.TrimPrefix(p.text[len(reopen+body):], "\n"); tail != "" && tail != "```" {
			t.Errorf("%s: piece %d ends with %q beyond its part of the text", name, i, tail)
		}
		reopen = ""
		if p.fence != "" {
			reopen = p.fence + "\n"
		}
		prev = p.end
	}
	if tail := v[prev:]; strings.TrimSpace(tail) != "" {
		t.Errorf("%s: text %q left out", name, tail)
	}
}

// With UTF-16 counting an astral character takes two units, so a piece
// holds half as many of them as with rune counting.
func TestLayoutUTF16(t *testing.T) {
	v := strings.Repeat("😀", 30) + " " + strings.Repeat("𝄞", 30)
	utf16 := newShape(platform.Caps{Count: format.UTF16}, Options{}, false).layout(v, nil, 40)
	runes := newShape(platform.Caps{Count: format.Runes}, Options{}, false).layout(v, nil, 40)
	if len(utf16) < 3 {
		t.Fatalf("UTF-16 layout gave %d pieces, want at least 3 for 120 units in 40", len(utf16))
	}
	for i, p := range utf16 {
		if n := format.Length(p.text, format.UTF16); n > 40 {
			t.Errorf("piece %d is %d UTF-16 units", i, n)
		}
		if !utf8.ValidString(p.text) || p.text != v[p.start:p.end] {
			t.Errorf("piece %d %q does not match its part of the text %q", i, p.text, v[p.start:p.end])
		}
	}
	if n := utf8.RuneCountInString(utf16[0].text); n > 20 {
		t.Errorf("first UTF-16 piece holds %d astral characters, more than 20", n)
	}
	if n := utf8.RuneCountInString(runes[0].text); n <= 20 {
		t.Errorf("first rune-counted piece holds %d characters; counting makes no difference", n)
	}
}

// decorate adds the status line and the cursor only when the result fits.
func TestDecorate(t *testing.T) {
	utf16 := platform.Caps{MaxLength: 6, Count: format.UTF16, Cursor: true}
	runes := platform.Caps{MaxLength: 6, Count: format.Runes, Cursor: true}
	tests := []struct {
		name         string
		caps         platform.Caps
		text, status string
		want         string
	}{
		{"cursor added", platform.Caps{MaxLength: 20, Cursor: true}, "hello", "", "hello" + testCursor},
		{"status and cursor added", platform.Caps{MaxLength: 20, Cursor: true}, "hello", "🔍 go…", "hello\n\n🔍 go…" + testCursor},
		{"no cursor where none is shown", platform.Caps{MaxLength: 20}, "hello", "🔍 go…", "hello\n\n🔍 go…"},
		{"exactly at the limit", platform.Caps{MaxLength: 20, Cursor: true}, strings.Repeat("a", 18), "", strings.Repeat("a", 18) + testCursor},
		{"cursor over the limit", platform.Caps{MaxLength: 20, Cursor: true}, strings.Repeat("a", 19), "", strings.Repeat("a", 19)},
		{"status over the limit", platform.Caps{MaxLength: 20, Cursor: true}, strings.Repeat("a", 10), "0123456789", strings.Repeat("a", 10)},
		{"no limit", platform.Caps{Cursor: true}, strings.Repeat("a", 5000), "s", strings.Repeat("a", 5000) + "\n\ns" + testCursor},
		{"astral characters fit in UTF-16", utf16, "😀😀", "", "😀😀" + testCursor},
		{"astral characters overflow in UTF-16", utf16, "😀😀a", "", "😀😀a"},
		{"the same text fits counted in runes", runes, "😀😀a", "", "😀😀a" + testCursor},
	}
	for _, tc := range tests {
		sh := newShape(tc.caps, Options{Cursor: testCursor}, false)
		if got := sh.decorate(tc.text, tc.status); got != tc.want {
			t.Errorf("%s: decorate = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// streamLimit leaves room for the cursor, "\n\n" and the longest status
// line, counted the platform's way, but never less than half the limit.
func TestStreamLimit(t *testing.T) {
	tests := []struct {
		name string
		caps platform.Caps
		want int
	}{
		{"runes", platform.Caps{MaxLength: 4096, Count: format.Runes, Cursor: true}, 4096 - 4 - 64},
		{"runes without cursor", platform.Caps{MaxLength: 4096, Count: format.Runes}, 4096 - 2 - 64},
		{"bytes", platform.Caps{MaxLength: 4096, Count: format.Bytes, Cursor: true}, 4096 - 6 - 64*4},
		{"utf-16", platform.Caps{MaxLength: 4096, Count: format.UTF16, Cursor: true}, 4096 - 4 - 64*2},
		{"small limit: half", platform.Caps{MaxLength: 100, Count: format.Runes, Cursor: true}, 50},
		{"tiny limit", platform.Caps{MaxLength: 1, Count: format.Runes, Cursor: true}, 1},
		{"no limit", platform.Caps{Count: format.Runes, Cursor: true}, 0},
	}
	for _, tc := range tests {
		sh := newShape(tc.caps, Options{Cursor: testCursor}, false)
		got := sh.streamLimit()
		if got != tc.want {
			t.Errorf("%s: streamLimit = %d, want %d", tc.name, got, tc.want)
		}
		if tc.caps.MaxLength < 1000 {
			continue
		}
		// A full piece still takes the longest status line and the cursor.
		status := statusLine(agent.ToolProgress{Emoji: "🔍", Label: strings.Repeat("😀", 100)})
		text := strings.Repeat("a", got)
		if d := sh.decorate(text, status); d != text+"\n\n"+status+sh.cursor {
			t.Errorf("%s: a piece of %d with a status of %d runes is not decorated", tc.name, got, utf8.RuneCountInString(status))
		}
	}
}

// statusLine shows the tool's emoji and label (else its name, else
// "working") with an ellipsis, on one line of at most statusRunes runes.
func TestStatusLine(t *testing.T) {
	tests := []struct {
		name string
		tool agent.ToolProgress
		want string
	}{
		{"emoji and label", agent.ToolProgress{Tool: "web_search", Emoji: "🔍", Label: "searching"}, "🔍 searching…"},
		{"label with its own ellipsis", agent.ToolProgress{Emoji: "📖", Label: "Reading file..."}, "📖 Reading file..."},
		{"label with its own …", agent.ToolProgress{Label: "Reading…"}, "Reading…"},
		{"tool name without label", agent.ToolProgress{Tool: " web_search ", Emoji: "🔍"}, "🔍 web_search…"},
		{"nothing known", agent.ToolProgress{}, "working…"},
		{"blank emoji", agent.ToolProgress{Emoji: "  ", Label: "thinking"}, "thinking…"},
		{"one line", agent.ToolProgress{Emoji: "🛠", Label: "  run\n  make\t\ttest \r\n"}, "🛠 run make test…"},
		{"63 runes and the ellipsis fit", agent.ToolProgress{Emoji: "🔍", Label: strings.Repeat("x", 61)}, "🔍 " + strings.Repeat("x", 61) + "…"},
		{"longer is cut", agent.ToolProgress{Emoji: "🔍", Label: strings.Repeat("x", 62)}, "🔍 " + strings.Repeat("x", 61) + "…"},
		{"much longer is cut", agent.ToolProgress{Label: strings.Repeat("y", 500)}, strings.Repeat("y", 63) + "…"},
	}
	for _, tc := range tests {
		got := statusLine(tc.tool)
		if got != tc.want {
			t.Errorf("%s: statusLine = %q, want %q", tc.name, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > statusRunes || strings.ContainsAny(got, "\n\r") {
			t.Errorf("%s: status line %q is %d runes or several lines", tc.name, got, n)
		}
	}
}

// toolRunning is false for the statuses of a tool that is over, in any
// case, and true otherwise.
func TestToolRunning(t *testing.T) {
	over := []string{"completed", "Completed", "complete", "done", "finished", "success",
		"succeeded", "failed", "FAILED", "error", "cancelled", "canceled"}
	running := []string{"", "running", "in_progress", "started", "pending", "completing"}
	for _, s := range over {
		if toolRunning(s) {
			t.Errorf("toolRunning(%q) = true", s)
		}
	}
	for _, s := range running {
		if !toolRunning(s) {
			t.Errorf("toolRunning(%q) = false", s)
		}
	}
}

// visibleChars counts all but whitespace, in characters.
func TestVisibleChars(t *testing.T) {
	for s, want := range map[string]int{"": 0, " \n\t": 0, "ab c": 3, "😀 é\u00a0x": 3} {
		if got := visibleChars(s); got != want {
			t.Errorf("visibleChars(%q) = %d, want %d", s, got, want)
		}
	}
}

// dueAt: an interval after the last change, at once when the text grew by
// the threshold, and never before a retry is due.
func TestDueAt(t *testing.T) {
	o := Options{EditInterval: 800 * time.Millisecond, BufferThreshold: 24}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Time { return now.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name                string
		lastChange, retryAt time.Time
		grown, size         int
		want                time.Time
	}{
		{"interval after the last change", ms(-300), time.Time{}, 10, 100, ms(500)},
		{"interval already over", ms(-5000), time.Time{}, 0, 100, ms(-4200)},
		{"grown by the threshold: at once", ms(-300), time.Time{}, 24, 100, now},
		{"grown by more: at once", ms(-10), time.Time{}, 1000, 100, now},
		{"just below the threshold waits", ms(-300), time.Time{}, 23, 100, ms(500)},
		{"retry later than the interval", ms(-300), ms(2000), 10, 100, ms(2000)},
		{"retry later than at once", ms(-300), ms(2000), 50, 100, ms(2000)},
		{"retry earlier changes nothing", ms(-300), ms(100), 10, 100, ms(500)},
		{"never changed", time.Time{}, time.Time{}, 0, 100, time.Time{}.Add(800 * time.Millisecond)},
		{"a 1 MiB answer: 100 ms apart, over already", ms(-300), time.Time{}, 24, 1 << 20, now},
		{"a 1 MiB answer: 100 ms apart", ms(-30), time.Time{}, 24, 1 << 20, ms(70)},
		{"a 20 MiB answer: 2 s apart, past the interval", ms(-300), time.Time{}, 10, 20 << 20, ms(1700)},
	}
	for _, tc := range tests {
		if got := dueAt(o, now, tc.lastChange, tc.retryAt, tc.grown, tc.size); !got.Equal(tc.want) {
			t.Errorf("%s: dueAt = %v, want %v", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}

// backoff doubles with each failure from the first wait, up to maxRetryDelay.
func TestBackoff(t *testing.T) {
	const first = 500 * time.Millisecond
	tests := []struct {
		first time.Duration
		n     int
		want  time.Duration
	}{
		{first, 0, first},
		{first, 1, first},
		{first, 2, time.Second},
		{first, 3, 2 * time.Second},
		{first, 6, 16 * time.Second},
		{first, 7, maxRetryDelay},
		{first, 1000, maxRetryDelay},
		{time.Minute, 1, maxRetryDelay},
		{3 * time.Second, 4, 24 * time.Second},
	}
	for _, tc := range tests {
		if got := backoff(tc.first, tc.n); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.first, tc.n, got, tc.want)
		}
	}
}

// finalTargets keeps the sealed messages when the final text continues
// them; otherwise all of them are rewritten, except the dead ones, which
// are stale.
func TestFinalTargets(t *testing.T) {
	s1 := &message{id: "s1", shown: "AB", upTo: "AB"}
	s2 := &message{id: "s2", shown: "CD", upTo: "AB CD"}
	dead := &message{id: "s2", shown: "CD", upTo: "AB CD", dead: true}
	active := &message{id: "a", shown: "EF ▉"}
	tests := []struct {
		name                   string
		s                      screen
		f                      string
		sealed, targets, stale []*message
	}{
		{"nothing shown", screen{}, "final", nil, nil, nil},
		{"active only", screen{active: active}, "final", nil, []*message{active}, nil},
		{"final continues the sealed messages", screen{sealed: []*message{s1, s2}, active: active}, "AB CD EF",
			[]*message{s1, s2}, []*message{active}, nil},
		{"final ends where the sealed messages do", screen{sealed: []*message{s1, s2}}, "AB CD",
			[]*message{s1, s2}, nil, nil},
		{"dead sealed message kept when continued", screen{sealed: []*message{s1, dead}, active: active}, "AB CD EF",
			[]*message{s1, dead}, []*message{active}, nil},
		{"final differs: all rewritten", screen{sealed: []*message{s1, s2}, active: active}, "XY",
			nil, []*message{s1, s2, active}, nil},
		{"final differs: dead ones stale", screen{sealed: []*message{s1, dead}, active: active}, "AB CX",
			nil, []*message{s1, active}, []*message{dead}},
		{"final differs, no active", screen{sealed: []*message{dead, s2}}, "",
			nil, []*message{s2}, []*message{dead}},
	}
	for _, tc := range tests {
		sealed, targets, stale := finalTargets(tc.s, tc.f)
		if !samePointers(sealed, tc.sealed) || !samePointers(targets, tc.targets) || !samePointers(stale, tc.stale) {
			t.Errorf("%s: finalTargets = %v %v %v, want %v %v %v", tc.name,
				ids(sealed), ids(targets), ids(stale), ids(tc.sealed), ids(tc.targets), ids(tc.stale))
		}
	}
}

func samePointers(a, b []*message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ids(ms []*message) []string {
	var out []string
	for _, m := range ms {
		s := m.id
		if m.dead {
			s += "(dead)"
		}
		out = append(out, s)
	}
	return out
}

// finalStep edits the first target that shows the wrong piece, sends the
// pieces beyond the targets, deletes the targets beyond the pieces, and is
// done when the targets show every piece.
func TestFinalStep(t *testing.T) {
	pieces := func(texts ...string) []piece {
		var ps []piece
		for i, s := range texts {
			ps = append(ps, piece{text: s, start: 10 * i, end: 10*i + len(s)})
		}
		return ps
	}
	showing := func(texts ...string) []*message {
		var ms []*message
		for i, s := range texts {
			ms = append(ms, &message{id: string(rune('a' + i)), shown: s})
		}
		return ms
	}
	tests := []struct {
		name    string
		pieces  []piece
		targets []*message
		kind    opKind // when not done
		done    bool
		index   int
	}{
		{"nothing shown: send the first", pieces("A", "B"), nil, opSend, false, 0},
		{"first shown: send the second", pieces("A", "B"), showing("A"), opSend, false, 1},
		{"second wrong: edit it", pieces("A", "B"), showing("A", "X"), opEdit, false, 1},
		{"first wrong: edit it first", pieces("A", "B"), showing("X", "B"), opEdit, false, 0},
		{"one target too many: delete it", pieces("A"), showing("A", "Y"), opDelete, false, 1},
		{"empty final: delete", nil, showing("Y"), opDelete, false, 0},
		{"all shown", pieces("A", "B"), showing("A", "B"), 0, true, 2},
		{"nothing at all", nil, nil, 0, true, 0},
	}
	for _, tc := range tests {
		o, i := finalStep(tc.pieces, tc.targets, 0)
		if i != tc.index {
			t.Errorf("%s: index %d, want %d", tc.name, i, tc.index)
		}
		if tc.done {
			if o != nil {
				t.Errorf("%s: finalStep = %+v, want nil", tc.name, *o)
			}
			continue
		}
		if o == nil {
			t.Errorf("%s: finalStep = nil, want kind %d", tc.name, tc.kind)
			continue
		}
		if o.kind != tc.kind {
			t.Errorf("%s: kind %d, want %d", tc.name, o.kind, tc.kind)
		}
		switch tc.kind {
		case opSend, opEdit:
			if o.text != tc.pieces[i].text || o.p != tc.pieces[i] {
				t.Errorf("%s: text %q piece %+v, want piece %+v", tc.name, o.text, o.p, tc.pieces[i])
			}
		}
		switch tc.kind {
		case opEdit, opDelete:
			if o.msg != tc.targets[i] {
				t.Errorf("%s: concerns %+v, want target %d", tc.name, o.msg, i)
			}
		case opSend:
			if o.msg != nil {
				t.Errorf("%s: a send concerns message %+v", tc.name, *o.msg)
			}
		}
	}
}

// An agent server that starts tools and never ends them cannot make the
// list of running tools grow: the latest are kept, the newest shown.
func TestRunningToolsAreBounded(t *testing.T) {
	d := &Delivery{}
	for i := range 1000 {
		d.trackTool(agent.ToolProgress{Tool: "search", ToolCallID: fmt.Sprint("call-", i), Status: "running"})
	}
	if len(d.tools) != maxRunningTools || d.tools[len(d.tools)-1].ToolCallID != "call-999" {
		t.Fatalf("kept %d tools, the last %q; want the %d latest", len(d.tools), d.tools[len(d.tools)-1].ToolCallID, maxRunningTools)
	}
	d.trackTool(agent.ToolProgress{Tool: "search", ToolCallID: "call-999", Status: "completed"})
	if last := d.tools[len(d.tools)-1].ToolCallID; last != "call-998" {
		t.Errorf("after the latest ended, %q shows; want call-998", last)
	}
}
