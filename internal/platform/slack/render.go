package slack

import (
	"regexp"
	"strings"
)

// autolinkRE finds markdown autolinks, <https://…>, which Slack would read
// as its own link syntax; bare, the URL is linked all the same.
var autolinkRE = regexp.MustCompile(`<(https?://[^\s<>]+)>`)

// massMentionRE finds where Slack may read a mention of everyone in the
// channel (@channel, @here, @everyone): an @ that starts a word, before
// the first letter of one of them. It looks no further than that letter, so
// that the pieces of a growing text render as the whole does, whatever the
// cut; an address such as ops@here.example is left alone.
var massMentionRE = regexp.MustCompile(`(^|\W)@([cheCHE])`)

// escaper escapes the three characters Slack reads as markup in message
// text (docs.slack.dev/messaging/formatting-message-text#escaping). A >
// that starts a line is left: it is a quote.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// render makes the agent's markdown safe to send to Slack: &, < and >
// escaped, so that nothing the agent writes becomes a control sequence (a
// mention such as <!channel> or <@U…>, or a link Slack never parsed),
// autolinks turned into bare URLs, and @channel, @here and @everyone broken
// with a word joiner so that they notify nobody. Markdown links,
// [label](url), are kept. It works on each character alone, but for
// autolinks, quotes and mentions, which renderAfter reads in context.
func render(md string) string {
	md = autolinkRE.ReplaceAllString(md, "$1")
	md = massMentionRE.ReplaceAllString(md, "$1@\u2060$2")
	lines := strings.SplitAfter(md, "\n")
	var b strings.Builder
	b.Grow(len(md))
	for _, line := range lines {
		rest := line
		if trimmed := strings.TrimLeft(line, " "); strings.HasPrefix(trimmed, ">") {
			quote := len(line) - len(trimmed) + len(trimmed) - len(strings.TrimLeft(trimmed, "> "))
			b.WriteString(line[:quote])
			rest = line[quote:]
		}
		b.WriteString(escaper.Replace(rest))
	}
	return b.String()
}

// renderAfter renders md, which follows prev in a growing text, as the end
// of the whole text renders: what a stream appends to what it shows.
func renderAfter(prev, md string) string {
	whole, head := render(prev+md), render(prev)
	if rest, ok := strings.CutPrefix(whole, head); ok {
		return rest
	}
	// What prev shows read differently with md after it (an autolink or a
	// mention completed): md alone, as the continuation of a line after
	// a character that is neither part of a word nor a quote.
	return strings.TrimPrefix(render("-"+md), "-")
}
