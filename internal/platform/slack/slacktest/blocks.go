package slacktest

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Text and Block Kit limits, the text of blocks, and the mass mentions a
// message would notify.

// maxText is the longest text of a posted message. Slack's changelog
// says longer texts are truncated at 40,000 characters with a
// message_truncated warning (api.slack.com/changelog/
// 2018-04-truncating-really-long-messages), and chat.postMessage's errors
// include msg_too_long, "Message text is too long"
// (docs.slack.dev/reference/methods/chat.postMessage). The fake refuses
// with msg_too_long, so that a test notices a text that would not show
// whole.
const maxText = 40000

// maxMarkdown is the longest markdown text of a markdown block, "Limit
// 12,000 characters max" (docs.slack.dev/reference/block-kit/blocks/
// markdown-block, as quoted in docs.slack.dev/tools/node-slack-sdk/
// reference/web-api/interfaces/MarkdownBlock), and of a chat.*Stream call's
// markdown_text, "Limit this field to 12,000 characters"
// (docs.slack.dev/reference/methods/chat.startStream, chat.appendStream,
// chat.stopStream).
const maxMarkdown = 12000

// maxMarkdownTotal is the most markdown text the markdown blocks of one
// message may hold together. Slack refuses more with msg_blocks_too_long
// without documenting the number; github.com/slackapi/bolt-js/issues/2509
// saw the refusal from about 13,200 characters. The fake draws the line at
// one markdown block's 12,000, to be on the safe side.
const maxMarkdownTotal = 12000

// maxSectionText is the longest text of a section block: 3,000 characters
// (docs.slack.dev/reference/block-kit/blocks/section-block); Slack answers
// invalid_blocks with "must be less than 3001 characters".
const maxSectionText = 3000

// maxHeaderText is the longest text of a header block: 150 characters
// (docs.slack.dev/reference/block-kit/blocks/header-block).
const maxHeaderText = 150

// maxBlocks is the most blocks a message may have: 50
// (docs.slack.dev/reference/block-kit/blocks; chat.stopStream's blocks
// argument "has a limit of 50", docs.slack.dev/reference/methods/
// chat.stopStream).
const maxBlocks = 50

// massMentionRE matches the special mentions that notify a whole channel,
// as Slack's formatting writes them: <!here>, <!channel>, <!everyone>, with
// an optional label (docs.slack.dev/messaging/formatting-message-text,
// special mentions).
var massMentionRE = regexp.MustCompile(`<!(?:here|channel|everyone)(?:\|[^>]*)?>`)

// linkNamesRE matches the plain words that link_names=true (or
// parse=full) turns into special mentions (same page, and chat.postMessage's
// link_names argument).
var linkNamesRE = regexp.MustCompile(`(?:^|[^\w@])@(?:here|channel|everyone)\b`)

// blockInfo is what the server keeps of a blocks argument.
type blockInfo struct {
	raw      []byte // compact JSON; nil when there was no argument
	count    int
	text     string
	mentions []string
}

// parseBlocks reads a blocks argument (a JSON array), checks it against
// Block Kit's limits and returns it, or the error code of chat.postMessage
// and chat.update for it.
func parseBlocks(arg string) (blockInfo, string) {
	var list []map[string]any
	if err := json.Unmarshal([]byte(arg), &list); err != nil {
		return blockInfo{}, "invalid_blocks_format"
	}
	if len(list) > maxBlocks {
		return blockInfo{}, "invalid_blocks"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(arg)); err != nil {
		return blockInfo{}, "invalid_blocks_format"
	}
	info := blockInfo{raw: buf.Bytes(), count: len(list)}
	var texts []string
	markdown := 0
	for _, b := range list {
		typ, _ := b["type"].(string)
		switch typ {
		case "":
			return blockInfo{}, "invalid_blocks"
		case "markdown":
			t, ok := b["text"].(string)
			if !ok || t == "" || utf8.RuneCountInString(t) > maxMarkdown {
				return blockInfo{}, "invalid_blocks"
			}
			markdown += utf8.RuneCountInString(t)
			texts = append(texts, t)
		case "section":
			t := textObject(b["text"])
			if utf8.RuneCountInString(t) > maxSectionText {
				return blockInfo{}, "invalid_blocks"
			}
			if t != "" {
				texts = append(texts, t)
			}
			if fields, ok := b["fields"].([]any); ok {
				for _, f := range fields {
					if t := textObject(f); t != "" {
						texts = append(texts, t)
					}
				}
			}
		case "header":
			t := textObject(b["text"])
			if t == "" || utf8.RuneCountInString(t) > maxHeaderText {
				return blockInfo{}, "invalid_blocks"
			}
			texts = append(texts, t)
		case "rich_text":
			if t := richTextText(b["elements"]); t != "" {
				texts = append(texts, t)
			}
		case "context":
			if els, ok := b["elements"].([]any); ok {
				for _, e := range els {
					if t := textObject(e); t != "" {
						texts = append(texts, t)
					}
				}
			}
		}
	}
	if markdown > maxMarkdownTotal {
		return blockInfo{}, "msg_blocks_too_long"
	}
	info.text = strings.Join(texts, "\n")
	for _, b := range list {
		info.mentions = append(info.mentions, blockMentions(b)...)
	}
	return info, ""
}

// textObject is the text of a text object ({"type": "mrkdwn", "text": …}).
func textObject(v any) string {
	if m, ok := v.(map[string]any); ok {
		t, _ := m["text"].(string)
		return t
	}
	return ""
}

// richTextText is the text a rich_text block's elements show.
func richTextText(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			switch v["type"] {
			case "text":
				t, _ := v["text"].(string)
				b.WriteString(t)
			case "link":
				if t, _ := v["text"].(string); t != "" {
					b.WriteString(t)
				} else {
					u, _ := v["url"].(string)
					b.WriteString(u)
				}
			case "user":
				u, _ := v["user_id"].(string)
				b.WriteString("<@" + u + ">")
			case "broadcast":
				r, _ := v["range"].(string)
				b.WriteString("<!" + r + ">")
			case "emoji":
				n, _ := v["name"].(string)
				b.WriteString(":" + n + ":")
			}
			if els, ok := v["elements"]; ok {
				walk(els)
				if t := v["type"]; t == "rich_text_section" || t == "rich_text_preformatted" || t == "rich_text_quote" {
					b.WriteString("\n")
				}
			}
		}
	}
	walk(v)
	return strings.TrimRight(b.String(), "\n")
}

// blockMentions are the mass mentions a block would notify: a rich text
// broadcast element, or a special mention in text Slack formats (mrkdwn
// text objects, markdown blocks). Plain text and rich text's text elements
// show such sequences literally.
func blockMentions(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			switch v["type"] {
			case "broadcast":
				r, _ := v["range"].(string)
				out = append(out, "<!"+r+">")
			case "mrkdwn", "markdown":
				if t, ok := v["text"].(string); ok {
					out = append(out, massMentionRE.FindAllString(t, -1)...)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k])
			}
		}
	}
	walk(v)
	return out
}

// textMentions are the mass mentions a message's text (mrkdwn, or a
// stream's markdown) would notify; with linkNames, plain @here and the
// like too.
func textMentions(text string, linkNames bool) []string {
	out := massMentionRE.FindAllString(text, -1)
	if linkNames {
		for _, m := range linkNamesRE.FindAllString(text, -1) {
			out = append(out, strings.TrimLeft(m, " \t\n\r([{\"'"))
		}
	}
	return out
}

// slackRefRE matches the references Slack writes in a message's text:
// <@U…>, <#C…|name>, <!here>, <https://…|label>.
var slackRefRE = regexp.MustCompile(`<([^<>]+)>`)

// unescape undoes Slack's escaping of a text's own &, < and >
// (docs.slack.dev/messaging/formatting-message-text, escaping text).
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// richTextBlocks are the blocks Slack gives a user's message typed in its
// composer: one rich_text block of one section, with users, channels,
// broadcasts and links as elements.
func richTextBlocks(text string, blockID string) []any {
	elems := []any{}
	addText := func(t string) {
		if t != "" {
			elems = append(elems, map[string]any{"type": "text", "text": unescape(t)})
		}
	}
	last := 0
	for _, loc := range slackRefRE.FindAllStringSubmatchIndex(text, -1) {
		addText(text[last:loc[0]])
		last = loc[1]
		ref := text[loc[2]:loc[3]]
		target, label, _ := strings.Cut(ref, "|")
		switch {
		case strings.HasPrefix(target, "@"):
			elems = append(elems, map[string]any{"type": "user", "user_id": target[1:]})
		case strings.HasPrefix(target, "#"):
			elems = append(elems, map[string]any{"type": "channel", "channel_id": target[1:]})
		case strings.HasPrefix(target, "!"):
			elems = append(elems, map[string]any{"type": "broadcast", "range": target[1:]})
		default:
			link := map[string]any{"type": "link", "url": target}
			if label != "" {
				link["text"] = unescape(label)
			}
			elems = append(elems, link)
		}
	}
	addText(text[last:])
	return []any{map[string]any{
		"type":     "rich_text",
		"block_id": blockID,
		"elements": []any{map[string]any{"type": "rich_text_section", "elements": elems}},
	}}
}
