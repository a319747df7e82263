package matrix

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/chat"
)

// The session scopes of MATRIX_SESSION_SCOPE.
const (
	ScopeAuto   = "auto"   // a thread is a session of its own
	ScopeRoom   = "room"   // threads share the room's session
	ScopeThread = "thread" // every top-level room message starts a thread
)

// rules are the settings that decide which messages the bot takes and how
// they map to sessions. They are pure functions of what a message says
// and where it is, so they are tested without a homeserver.
type rules struct {
	requireMention bool
	freeRooms      map[string]bool
	allowedRooms   map[string]bool // empty: every room
	ignore         []*regexp.Regexp
	processNotices bool
	autoThread     bool
	scope          string
	// threadRequireMention takes a thread the bot answered in like any
	// other place: a mention is needed there too (against bots answering
	// each other in a thread).
	threadRequireMention bool
	// dmAutoThread answers a DM's top-level messages in a thread on them;
	// dmMentionThreads those that mention the bot.
	dmAutoThread, dmMentionThreads bool
}

// placement is where a message sits: what the rules need to know of it.
type placement struct {
	dm         bool   // the room has at most two members
	room       string // room id
	eventID    string
	threadRoot string // the m.thread root, if the message is in a thread
}

// routing is what the rules make of a message's place.
type routing struct {
	chatType chat.ChatType
	// threadID is the thread the session is keyed by (Source.ThreadID).
	threadID string
	// replyThread is the thread the answer goes into; it differs from
	// threadID with the room scope, where threads share a session.
	replyThread string
}

// route decides the chat type and threads of a message per
// MATRIX_SESSION_SCOPE, MATRIX_AUTO_THREAD and, in DMs,
// MATRIX_DM_AUTO_THREAD and MATRIX_DM_MENTION_THREADS (mentionsBot says
// whether the message mentions the bot). A DM stays a DM (one session per
// DM, as the reference keys them) even in a thread, whose answers still go
// into that thread.
func (r *rules) route(p placement, mentionsBot bool) routing {
	if p.dm {
		thread := p.threadRoot
		if thread == "" && (r.dmAutoThread || (r.dmMentionThreads && mentionsBot)) {
			thread = p.eventID
		}
		return routing{chatType: chat.DM, threadID: thread, replyThread: thread}
	}
	thread := p.threadRoot
	if thread == "" && (r.autoThread || r.scope == ScopeThread) {
		thread = p.eventID // the answer starts a thread on the message
	}
	out := routing{chatType: chat.Group, threadID: thread, replyThread: thread}
	if r.scope == ScopeRoom {
		out.threadID = ""
	}
	if out.threadID != "" {
		out.chatType = chat.Thread
	}
	return out
}

// roomAllowed reports whether the bot takes messages from a room at all:
// DMs always, other rooms when MATRIX_ALLOWED_ROOMS is empty or lists them.
func (r *rules) roomAllowed(p placement) bool {
	return p.dm || len(r.allowedRooms) == 0 || r.allowedRooms[p.room]
}

// ignored reports whether a sender matches MATRIX_IGNORE_USER_PATTERNS.
func (r *rules) ignored(userID string) bool {
	for _, re := range r.ignore {
		if re.MatchString(userID) {
			return true
		}
	}
	return false
}

// addressing is what a message says about whom it is for.
type addressing struct {
	mentionsBot  bool // an m.mentions entry, a pill or the bot's name in the text
	repliesToBot bool // a reply to, or a thread on, one of the bot's messages
	botInThread  bool // the bot already answered in the message's thread
	command      bool // one of the gateway's commands
}

// mentioned decides chat.Inbound.Mentioned: DMs never need a mention; free
// response rooms and rooms with MATRIX_REQUIRE_MENTION off take every
// message; elsewhere a message must mention the bot, reply to it, be in a
// thread it answered in, or be a command.
func (r *rules) mentioned(p placement, a addressing) bool {
	switch {
	case p.dm, !r.requireMention, r.freeRooms[p.room]:
		return true
	}
	return a.mentionsBot || a.repliesToBot || (a.botInThread && !r.threadRequireMention) || a.command
}

// isCommand recognises the gateway's commands, with "/" or "!".
func isCommand(text string) bool {
	_, ok := chat.Command(text)
	return ok
}

// identity is how the bot can be named in a message.
type identity struct {
	userID      string // @herald:example.org
	displayName string // may be empty
}

// localpart is the user id's name part (herald in @herald:example.org).
func (id identity) localpart() string {
	local, _, _ := strings.Cut(strings.TrimPrefix(id.userID, "@"), ":")
	return local
}

// mentionedIn reports whether a message's text names the bot: its full
// user id, a matrix.to link to it (a pill), or its display name or
// localpart as a whole word.
func (id identity) mentionedIn(body, formatted string) bool {
	if id.userID == "" {
		return false
	}
	if strings.Contains(body, id.userID) || strings.Contains(formatted, "matrix.to/#/"+id.userID) ||
		strings.Contains(formatted, "matrix.to/#/"+strings.ReplaceAll(id.userID, ":", "%3A")) {
		return true
	}
	for _, name := range []string{id.displayName, id.localpart()} {
		if name != "" && containsWord(body, name) {
			return true
		}
	}
	return false
}

// stripLeadingMention removes the bot's name from the start of a message
// ("herald: /status", "@herald:example.org hello"), so a command written to
// the bot is recognised and the agent gets what was said to it.
func (id identity) stripLeadingMention(text string) string {
	trimmed := strings.TrimLeft(text, " \t")
	for _, name := range []string{id.userID, id.displayName, "@" + id.localpart(), id.localpart()} {
		if name == "" || len(trimmed) < len(name) || !strings.EqualFold(trimmed[:len(name)], name) {
			continue
		}
		rest := trimmed[len(name):]
		if rest != "" {
			r, _ := utf8.DecodeRuneInString(rest)
			if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' {
				continue // a longer word that starts with the name
			}
		}
		rest = strings.TrimLeft(rest, ":, \t")
		if rest == "" {
			return text // nothing but the name: keep it as written
		}
		return rest
	}
	return text
}

// containsWord reports whether s holds word (case-insensitively) with no
// letter or digit right before or after it.
func containsWord(s, word string) bool {
	ls, lw := strings.ToLower(s), strings.ToLower(word)
	for from := 0; ; {
		i := strings.Index(ls[from:], lw)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(lw)
		before, _ := utf8.DecodeLastRuneInString(ls[:start])
		after, _ := utf8.DecodeRuneInString(ls[end:])
		if !isWordRune(before) && !isWordRune(after) {
			return true
		}
		from = start + 1
	}
}

func isWordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
}
