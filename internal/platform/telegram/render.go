package telegram

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// mdParser parses the agent's markdown: CommonMark with GitHub's tables,
// strikethrough, autolinks and task lists.
var mdParser = goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser()

// rendered is a markdown text turned into Telegram's HTML style.
type rendered struct {
	// HTML is the text to send with parse_mode HTML.
	HTML string
	// Visible is the text Telegram shows once it has parsed HTML: what its
	// length limit applies to.
	Visible string
}

// renderHTML turns markdown into the HTML subset the Bot API accepts: b,
// i, s, code, pre (with the code's language), a and blockquote. Every other
// character is escaped (&lt; &gt; &amp;), so raw HTML in the markdown shows
// as written. Headings become bold lines, list items get "•" or their
// number, tables become lines of cells joined by " | ". Blocks are
// separated as in the source (a blank line, or one line break), so the
// visible text is never much longer than the markdown.
func renderHTML(md string) rendered {
	md = strings.ToValidUTF8(md, "\uFFFD")
	src := []byte(md)
	doc := mdParser.Parse(text.NewReader(src))
	w := &htmlWriter{src: src}
	w.blocks(doc)
	return rendered{HTML: w.html.String(), Visible: w.vis.String()}
}

// htmlWriter builds the HTML and the visible text side by side.
type htmlWriter struct {
	src  []byte
	html strings.Builder
	vis  strings.Builder
	// indent starts every line inside a list item; bol tells that the
	// text written so far ends a line.
	indent string
	bol    bool
	// Formatting open around what is being written; Telegram refuses
	// tags inside code and pre, and some nestings.
	pre, code, link, quote, bold, italic, strike int
}

// write adds visible text, escaped for HTML. Lines inside a list item
// start with its indentation, except in code blocks.
func (w *htmlWriter) write(s string) {
	if w.pre > 0 || w.indent == "" {
		w.raw(s)
		w.bol = strings.HasSuffix(s, "\n")
		return
	}
	for s != "" {
		if w.bol && s[0] != '\n' {
			w.raw(w.indent)
			w.bol = false
		}
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			w.raw(s)
			return
		}
		w.raw(s[:i+1])
		w.bol = true
		s = s[i+1:]
	}
}

// raw adds visible text as it is.
func (w *htmlWriter) raw(s string) {
	if s == "" {
		return
	}
	w.vis.WriteString(s)
	w.html.WriteString(escapeHTML(s))
}

// tag adds markup, which is not visible.
func (w *htmlWriter) tag(s string) { w.html.WriteString(s) }

// blocks writes the block children of n, separated as in the source.
func (w *htmlWriter) blocks(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if c != n.FirstChild() {
			w.write("\n")
			if c.HasBlankPreviousLines() {
				w.write("\n")
			}
		}
		w.block(c)
	}
}

// block writes one block node.
func (w *htmlWriter) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Heading:
		w.styled("<b>", "</b>", &w.bold, func() { w.inlines(n) })
	case *ast.ThematicBreak:
		w.write("———")
	case *ast.FencedCodeBlock:
		w.codeBlock(n, language(n.Language(w.src)))
	case *ast.CodeBlock:
		w.codeBlock(n, "")
	case *ast.HTMLBlock:
		var b strings.Builder
		lines := n.Lines()
		for i := range lines.Len() {
			seg := lines.At(i)
			b.Write(seg.Value(w.src))
		}
		if n.HasClosure() {
			b.Write(n.ClosureLine.Value(w.src))
		}
		w.write(strings.TrimRight(b.String(), "\n"))
	case *ast.Blockquote:
		if w.quote > 0 || w.pre > 0 {
			w.blocks(n)
			return
		}
		w.quote++
		w.tag("<blockquote>")
		w.blocks(n)
		w.tag("</blockquote>")
		w.quote--
	case *ast.List:
		w.list(n)
	case *east.Table:
		w.table(n)
	default: // paragraphs, text blocks, and anything else holding inlines
		if n.FirstChild() != nil && n.FirstChild().Type() == ast.TypeBlock {
			w.blocks(n)
			return
		}
		w.inlines(n)
	}
}

// codeBlock writes a code block as pre, with its language if known.
func (w *htmlWriter) codeBlock(n ast.Node, lang string) {
	var b strings.Builder
	lines := n.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		b.Write(seg.Value(w.src))
	}
	code := strings.TrimRight(b.String(), "\n")
	if w.pre > 0 || w.code > 0 {
		w.write(code)
		return
	}
	w.pre++
	if lang != "" {
		w.tag(`<pre><code class="language-` + lang + `">`)
		w.write(code)
		w.tag("</code></pre>")
	} else {
		w.tag("<pre>")
		w.write(code)
		w.tag("</pre>")
	}
	w.pre--
}

// languageRE is what a code block's language may look like in a class name.
var languageRE = regexp.MustCompile(`^[A-Za-z0-9_+#.\-]{1,32}$`)

// language is a fenced code block's language, if it is safe to send.
func language(info []byte) string {
	if l := string(info); languageRE.MatchString(l) {
		return l
	}
	return ""
}

// list writes a list's items with their bullets or numbers.
func (w *htmlWriter) list(l *ast.List) {
	num := l.Start
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		if item != l.FirstChild() {
			w.write("\n")
			if !l.IsTight || item.HasBlankPreviousLines() {
				w.write("\n")
			}
		}
		mark := "• "
		if l.IsOrdered() {
			mark = strconv.Itoa(num) + string(l.Marker) + " "
			num++
		}
		w.write(mark)
		outer := w.indent
		w.indent += strings.Repeat(" ", utf8.RuneCountInString(mark))
		w.blocks(item)
		w.indent = outer
	}
}

// table writes a table's rows, cells joined by " | ", the header in bold.
func (w *htmlWriter) table(t *east.Table) {
	for row := t.FirstChild(); row != nil; row = row.NextSibling() {
		if row != t.FirstChild() {
			w.write("\n")
		}
		header := row.Kind() == east.KindTableHeader
		for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
			if cell != row.FirstChild() {
				w.write(" | ")
			}
			if header {
				w.styled("<b>", "</b>", &w.bold, func() { w.inlines(cell) })
			} else {
				w.inlines(cell)
			}
		}
	}
}

// styled writes body inside a tag pair, unless the same style is already
// open or code is (Telegram takes no tags inside code).
func (w *htmlWriter) styled(open, close string, depth *int, body func()) {
	if *depth > 0 || w.pre > 0 || w.code > 0 {
		body()
		return
	}
	*depth++
	w.tag(open)
	body()
	w.tag(close)
	*depth--
}

// inlines writes the inline children of n.
func (w *htmlWriter) inlines(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		w.inline(c)
	}
}

// inline writes one inline node.
func (w *htmlWriter) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		v := n.Segment.Value(w.src)
		if n.IsRaw() {
			w.write(string(v))
		} else {
			w.write(unescapeMarkdown(v))
		}
		if n.HardLineBreak() || n.SoftLineBreak() {
			w.write("\n")
		}
	case *ast.String:
		if n.IsRaw() || n.IsCode() {
			w.write(string(n.Value))
		} else {
			w.write(unescapeMarkdown(n.Value))
		}
	case *ast.CodeSpan:
		var b strings.Builder
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			if t, ok := c.(*ast.Text); ok {
				v := t.Segment.Value(w.src)
				if len(v) > 0 && v[len(v)-1] == '\n' {
					v = append(v[:len(v)-1:len(v)-1], ' ')
				}
				b.Write(v)
			} else if s, ok := c.(*ast.String); ok {
				b.Write(s.Value)
			}
		}
		if w.pre > 0 || w.code > 0 || w.link > 0 {
			w.write(b.String())
			return
		}
		w.code++
		w.tag("<code>")
		w.write(b.String())
		w.tag("</code>")
		w.code--
	case *ast.Emphasis:
		if n.Level >= 2 {
			w.styled("<b>", "</b>", &w.bold, func() { w.inlines(n) })
		} else {
			w.styled("<i>", "</i>", &w.italic, func() { w.inlines(n) })
		}
	case *east.Strikethrough:
		w.styled("<s>", "</s>", &w.strike, func() { w.inlines(n) })
	case *ast.Link:
		w.link2(string(n.Destination), n)
	case *ast.Image:
		if n.FirstChild() == nil {
			w.linkText(string(n.Destination), "image")
			return
		}
		w.link2(string(n.Destination), n)
	case *ast.AutoLink:
		// Telegram finds links and e-mail addresses in the text itself.
		w.write(string(n.Label(w.src)))
	case *ast.RawHTML:
		segs := n.Segments
		for i := range segs.Len() {
			seg := segs.At(i)
			w.write(string(seg.Value(w.src)))
		}
	case *east.TaskCheckBox:
		if n.IsChecked {
			w.write("☑ ")
		} else {
			w.write("☐ ")
		}
	default:
		w.inlines(n)
	}
}

// link2 writes a link (or an image as a link to it) around n's children.
func (w *htmlWriter) link2(dest string, n ast.Node) {
	href, ok := safeURL(dest)
	if !ok || w.link > 0 || w.pre > 0 || w.code > 0 {
		w.inlines(n)
		return
	}
	w.link++
	w.tag(`<a href="` + escapeAttr(href) + `">`)
	w.inlines(n)
	w.tag("</a>")
	w.link--
}

// linkText writes a link whose text is given.
func (w *htmlWriter) linkText(dest, label string) {
	href, ok := safeURL(dest)
	if !ok || w.link > 0 || w.pre > 0 || w.code > 0 {
		w.write(label)
		return
	}
	w.tag(`<a href="` + escapeAttr(href) + `">`)
	w.write(label)
	w.tag("</a>")
}

// safeURL accepts links Telegram can open: http(s) with a host, tg: and
// mailto:.
func safeURL(dest string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(dest))
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.String(), u.Host != ""
	case "tg", "mailto":
		return u.String(), u.Opaque != "" || u.Host != "" || u.Path != ""
	}
	return "", false
}

// entityRE matches the HTML entities CommonMark resolves in text.
var entityRE = regexp.MustCompile(`^&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});`)

// unescapeMarkdown gives the text a markdown text segment stands for:
// backslash escapes removed, HTML entities resolved, NUL replaced.
func unescapeMarkdown(v []byte) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v) && util.IsPunct(v[i+1]):
			b.WriteByte(v[i+1])
			i++
		case c == '&':
			if m := entityRE.Find(v[i:]); m != nil {
				r := util.ResolveNumericReferences(m)
				r = util.ResolveEntityNames(r)
				b.Write(r)
				i += len(m) - 1
				continue
			}
			b.WriteByte(c)
		case c == 0:
			b.WriteString("\uFFFD")
		default:
			b.WriteByte(c)
		}
	}
	return strings.ReplaceAll(strings.ToValidUTF8(b.String(), "\uFFFD"), "\x00", "\uFFFD")
}

// htmlEscaper escapes text for the Bot API's HTML style, which knows only
// &lt; &gt; &amp; and &quot;.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeHTML(s string) string { return htmlEscaper.Replace(s) }

var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func escapeAttr(s string) string { return attrEscaper.Replace(s) }
