package webchat

import (
	"html"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// markdown renders GitHub-flavoured markdown (extension.GFM, spelled out
// so that aligned table cells get an align attribute: the page's
// Content-Security-Policy refuses style attributes). Without
// html.WithUnsafe, goldmark drops raw HTML and dangerous link targets, so
// its output is safe to put into the page.
var markdown = goldmark.New(goldmark.WithExtensions(
	extension.Linkify,
	extension.NewTable(extension.WithTableCellAlignMethod(extension.TableCellAlignAttribute)),
	extension.Strikethrough,
	extension.TaskList,
))

// renderHTML turns the agent's markdown into HTML for the page. It stands in
// for format.Render(md, format.HTML) until that exists: swap the body then.
func renderHTML(md string) string {
	var b strings.Builder
	if err := markdown.Convert([]byte(md), &b); err != nil {
		return "<p>" + html.EscapeString(md) + "</p>"
	}
	return b.String()
}
