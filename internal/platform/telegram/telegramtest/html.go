package telegramtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError is a text the API refuses to parse, with its description
// (what follows "Bad Request: can't parse entities: ").
type ParseError struct {
	Detail string
}

func (e *ParseError) Error() string { return "can't parse entities: " + e.Detail }

// tagTypes maps the tags of the Bot API's HTML style to entity types.
var tagTypes = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"span": "spoiler", "tg-spoiler": "spoiler",
	"a":          "text_link",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
	"tg-emoji":   "custom_emoji",
}

// openTag is a start tag waiting for its end tag.
type openTag struct {
	name  string
	attrs map[string]string
	start int // visible offset in UTF-16 units
	inPre bool
	order int // how many tags opened before it, plus one
}

// ParseHTML parses a text sent with parse_mode HTML as the Bot API does:
// it returns the visible text and its entities (offsets and lengths in
// UTF-16 code units, entities of zero length dropped), or a *ParseError
// with the API's description.
//
// The supported tags are b, strong, i, em, u, ins, s, strike, del,
// span class="tg-spoiler", tg-spoiler, a href, code (class="language-x"
// inside pre), pre, blockquote (expandable) and tg-emoji emoji-id. The
// supported entities are &lt; &gt; &amp; &quot; and numeric ones.
//
// It is stricter than Telegram in a few places where Telegram silently
// drops formatting or keeps a character as it is, so that tests catch a
// renderer that relies on that: a "&" that starts no supported entity,
// tags inside code or pre (but code directly in pre), a blockquote in a
// blockquote and a link in a link are refused.
func ParseHTML(s string) (string, []Entity, error) {
	var text strings.Builder
	var entities []Entity
	var order []int // the opening position of each entity's tag
	var stack []openTag
	opened := 0
	units := 0
	fail := func(format string, args ...any) (string, []Entity, error) {
		return "", nil, &ParseError{Detail: fmt.Sprintf(format, args...)}
	}
	emit := func(r rune) {
		text.WriteRune(r)
		units += utf16Len(r)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '<' && i+1 < len(s) && s[i+1] == '/':
			start := i
			j := i + 2
			for j < len(s) && isTagChar(s[j]) {
				j++
			}
			name := strings.ToLower(s[i+2 : j])
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '>' {
				return fail("Unclosed end tag at byte offset %d", start)
			}
			if len(stack) == 0 {
				return fail("Unexpected end tag at byte offset %d", start)
			}
			top := stack[len(stack)-1]
			if top.name != name {
				return fail("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", start, top.name, name)
			}
			stack = stack[:len(stack)-1]
			if e, ok := entityOf(top, units, stack); ok {
				entities = append(entities, e)
				order = append(order, top.order)
			}
			i = j + 1
		case c == '<':
			start := i
			j := i + 1
			for j < len(s) && isTagChar(s[j]) {
				j++
			}
			name := strings.ToLower(s[i+1 : j])
			if _, ok := tagTypes[name]; !ok {
				return fail("Unsupported start tag \"%s\" at byte offset %d", name, start)
			}
			attrs, end, err := readAttrs(s, j)
			if err != "" {
				return fail("%s at byte offset %d", err, start)
			}
			if end < 0 {
				return fail("Unclosed start tag at byte offset %d", start)
			}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				switch {
				case top.name == "pre" && name == "code":
				case top.name == "pre" || top.name == "code" || top.inPre:
					return fail("Tag \"%s\" inside \"%s\" is not supported at byte offset %d", name, top.name, start)
				}
				for _, t := range stack {
					if name == "blockquote" && t.name == "blockquote" {
						return fail("Nested blockquotes are not supported at byte offset %d", start)
					}
					if name == "a" && t.name == "a" {
						return fail("Nested links are not supported at byte offset %d", start)
					}
				}
			}
			switch name {
			case "span":
				if attrs["class"] != "tg-spoiler" {
					return fail("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", start)
				}
			case "tg-emoji":
				if _, err := strconv.ParseInt(attrs["emoji-id"], 10, 64); err != nil {
					return fail("Custom emoji entity must contain a valid custom emoji identifier at byte offset %d", start)
				}
			}
			inPre := name == "code" && len(stack) > 0 && stack[len(stack)-1].name == "pre"
			opened++
			stack = append(stack, openTag{name: name, attrs: attrs, start: units, inPre: inPre, order: opened})
			i = end
		case c == '&':
			r, n, ok := readEntity(s[i:])
			if !ok {
				return fail("Unsupported HTML entity at byte offset %d", i)
			}
			emit(r)
			i += n
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			emit(r)
			i += size
		}
	}
	if len(stack) > 0 {
		return fail("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1].name)
	}
	// Outer entities first: by offset, then longest, then opened first.
	idx := make([]int, len(entities))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ea, eb := entities[idx[a]], entities[idx[b]]
		if ea.Offset != eb.Offset {
			return ea.Offset < eb.Offset
		}
		if ea.Length != eb.Length {
			return ea.Length > eb.Length
		}
		return order[idx[a]] < order[idx[b]]
	})
	sorted := make([]Entity, len(entities))
	for i, j := range idx {
		sorted[i] = entities[j]
	}
	entities = sorted
	return text.String(), entities, nil
}

// entityOf makes the entity a closed tag stands for; code directly inside
// pre only gives the pre its language.
func entityOf(t openTag, end int, outer []openTag) (Entity, bool) {
	if t.inPre {
		if lang, ok := strings.CutPrefix(t.attrs["class"], "language-"); ok && len(outer) > 0 {
			outer[len(outer)-1].attrs["language"] = lang
		}
		return Entity{}, false
	}
	if end == t.start {
		return Entity{}, false
	}
	e := Entity{Type: tagTypes[t.name], Offset: t.start, Length: end - t.start}
	switch t.name {
	case "a":
		href, ok := t.attrs["href"]
		if !ok || href == "" {
			return Entity{}, false
		}
		e.URL = href
	case "pre":
		e.Language = t.attrs["language"]
	case "blockquote":
		if _, ok := t.attrs["expandable"]; ok {
			e.Type = "expandable_blockquote"
		}
	case "tg-emoji":
		e.CustomEmojiID = t.attrs["emoji-id"]
	}
	return e, true
}

// readAttrs reads a start tag's attributes from s[i:] up to its '>'. It
// returns them, the offset after the '>' (-1 when there is none), and a
// description of a malformed attribute.
func readAttrs(s string, i int) (map[string]string, int, string) {
	attrs := map[string]string{}
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return nil, -1, ""
		}
		if s[i] == '>' {
			return attrs, i + 1, ""
		}
		j := i
		for j < len(s) && isTagChar(s[j]) {
			j++
		}
		if j == i {
			return nil, 0, "Empty attribute name in the tag"
		}
		name := strings.ToLower(s[i:j])
		i = j
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return nil, -1, ""
		}
		if s[i] != '=' {
			attrs[name] = ""
			continue
		}
		i++
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return nil, -1, ""
		}
		var raw string
		if q := s[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				return nil, -1, ""
			}
			raw = s[i+1 : i+1+end]
			i += end + 2
		} else {
			j := i
			for j < len(s) && !isSpace(s[j]) && s[j] != '>' {
				j++
			}
			raw = s[i:j]
			i = j
		}
		v, ok := decodeEntities(raw)
		if !ok {
			return nil, 0, "Unsupported HTML entity in an attribute value"
		}
		attrs[name] = v
	}
}

// decodeEntities replaces the supported HTML entities in s.
func decodeEntities(s string) (string, bool) {
	if !strings.Contains(s, "&") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '&' {
			b.WriteByte(s[i])
			i++
			continue
		}
		r, n, ok := readEntity(s[i:])
		if !ok {
			return "", false
		}
		b.WriteRune(r)
		i += n
	}
	return b.String(), true
}

// readEntity reads the HTML entity at the start of s.
func readEntity(s string) (rune, int, bool) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 10 {
		return 0, 0, false
	}
	name := s[1:end]
	switch name {
	case "lt":
		return '<', end + 1, true
	case "gt":
		return '>', end + 1, true
	case "amp":
		return '&', end + 1, true
	case "quot":
		return '"', end + 1, true
	}
	if num, ok := strings.CutPrefix(name, "#"); ok {
		base := 10
		if hex, ok := strings.CutPrefix(strings.ToLower(num), "x"); ok {
			num, base = hex, 16
		}
		v, err := strconv.ParseUint(num, base, 32)
		if err != nil || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
			return 0, 0, false
		}
		return rune(v), end + 1, true
	}
	return 0, 0, false
}

func isTagChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// utf16Len is how many UTF-16 code units r takes.
func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// UTF16Len is how many UTF-16 code units s takes: the unit Telegram
// measures texts and entity offsets in.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}
