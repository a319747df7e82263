package format

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Render turns the agent's markdown into what a platform of flavour f shows.
//
// Markdown (and any unknown flavour) is returned as it is. HTML is rendered
// with GitHub-flavoured markdown (tables, strikethrough, autolinks, task
// lists); it is safe to put in a web page: raw HTML in the input is shown as
// escaped text, never passed through, links and images to dangerous schemes
// (javascript:, vbscript:, file:, data: other than images) lose their URL,
// and every link gets rel="nofollow noopener". Plain is readable text: the
// markdown markers are dropped (emphasis, headings' #, code fences), list
// items keep a "- " or "1. " mark, links become "text (url)", images their
// alt text, table cells are joined with " | ", and raw HTML is kept as
// written, since plain text cannot run it.
func Render(md string, f Flavour) string {
	switch f {
	case HTML:
		if html, ok := plainParagraph(md); ok {
			return html
		}
		var b renderBuffer
		if err := htmlRenderer.Convert([]byte(md), &b); err != nil {
			// Converting to a buffer does not fail; be safe if it does.
			return string(util.EscapeHTML([]byte(md)))
		}
		return b.String()
	case Plain:
		return renderPlain(md)
	default:
		return md
	}
}

// plainParagraph renders, without goldmark, a text that can only be one
// paragraph of plain words: one line, starting with a letter, holding no
// character that markdown or autolinking give a meaning to. The paragraph
// an answer is writing is often such a text, and the web chat renders it
// again at every edit. FuzzPlainParagraph holds it to goldmark's output.
func plainParagraph(md string) (string, bool) {
	text := strings.TrimRight(md, " ")
	if text == "" {
		return "", false
	}
	for i, r := range text {
		switch {
		case i == 0 && !unicode.IsLetter(r):
			return "", false
		case r < utf8.RuneSelf:
			if !plainASCII(byte(r)) {
				return "", false
			}
		case r == utf8.RuneError || unicode.IsSpace(r):
			return "", false
		}
	}
	for i := strings.IndexByte(text, '.'); i >= 0; {
		if i >= 3 && strings.EqualFold(text[i-3:i], "www") {
			return "", false // linkified
		}
		next := strings.IndexByte(text[i+1:], '.')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return "<p>" + strings.ReplaceAll(text, `"`, "&quot;") + "</p>\n", true
}

// plainASCII tells the ASCII characters that mean nothing to markdown in
// the middle of a line.
func plainASCII(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte(` .,;?!'"()-/%+=$`, c) >= 0
}

// renderBuffer collects goldmark's output. It is a util.BufWriter, which
// goldmark writes to directly; any other writer it wraps in a new 4 KB
// bufio.Writer on every call, and the web chat renders on every edit.
type renderBuffer struct{ bytes.Buffer }

var _ util.BufWriter = (*renderBuffer)(nil)

func (b *renderBuffer) Buffered() int { return b.Len() }

func (*renderBuffer) Flush() error { return nil }

// htmlRenderer is goldmark with GFM, raw HTML escaped and links marked.
// GFM's extensions are spelled out so that aligned table cells get an align
// attribute rather than a style one, which a Content-Security-Policy refuses.
var htmlRenderer = goldmark.New(
	goldmark.WithExtensions(
		extension.Linkify,
		extension.NewTable(extension.WithTableCellAlignMethod(extension.TableCellAlignAttribute)),
		extension.Strikethrough,
		extension.TaskList,
	),
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(relTransformer{}, 100))),
	goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(escapeRawHTML{}, 100))),
)

// relTransformer adds rel="nofollow noopener" to every link, so that a page
// showing an answer neither vouches for its links nor hands them its window.
type relTransformer struct{}

func (relTransformer) Transform(doc *ast.Document, _ text.Reader, _ parser.Context) {
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering && (n.Kind() == ast.KindLink || n.Kind() == ast.KindAutoLink) {
			n.SetAttributeString("rel", []byte("nofollow noopener"))
		}
		return ast.WalkContinue, nil
	})
}

// escapeRawHTML renders raw HTML from the input as text, so that what the
// model wrote is seen but never run.
type escapeRawHTML struct{}

func (escapeRawHTML) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindRawHTML, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			segs := n.(*ast.RawHTML).Segments
			for i := range segs.Len() {
				seg := segs.At(i)
				_, _ = w.Write(util.EscapeHTML(seg.Value(src)))
			}
		}
		return ast.WalkSkipChildren, nil
	})
	reg.Register(ast.KindHTMLBlock, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		b := n.(*ast.HTMLBlock)
		if entering {
			_, _ = w.WriteString("<p>")
			lines := b.Lines()
			for i := range lines.Len() {
				line := lines.At(i)
				_, _ = w.Write(util.EscapeHTML(line.Value(src)))
			}
			if b.HasClosure() {
				_, _ = w.Write(util.EscapeHTML(b.ClosureLine.Value(src)))
			}
			_, _ = w.WriteString("</p>\n")
		}
		return ast.WalkSkipChildren, nil
	})
}

// plainParser parses markdown for renderPlain.
var plainParser = goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser()

// renderPlain writes the text of a markdown document without its markers.
func renderPlain(md string) string {
	src := []byte(md)
	doc := plainParser.Parse(text.NewReader(src))
	p := plainWriter{src: src}
	p.blocks(doc, "")
	return strings.TrimRight(p.b.String(), "\n")
}

// plainWriter gathers plain text from a markdown syntax tree.
type plainWriter struct {
	src []byte
	b   strings.Builder
}

// blocks writes the block children of n, separated by blank lines, each
// line starting with indent.
func (p *plainWriter) blocks(n ast.Node, indent string) {
	first := true
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if !first {
			p.b.WriteString("\n")
			if n.Kind() != ast.KindListItem && !isTight(n) {
				p.b.WriteString("\n")
			}
		}
		first = false
		p.block(c, indent)
	}
}

// isTight reports whether n is a list whose items are not separated by
// blank lines.
func isTight(n ast.Node) bool {
	l, ok := n.(*ast.List)
	return ok && l.IsTight
}

// block writes one block node.
func (p *plainWriter) block(n ast.Node, indent string) {
	switch n := n.(type) {
	case *ast.FencedCodeBlock, *ast.CodeBlock, *ast.HTMLBlock:
		p.lines(n, indent)
	case *ast.List:
		num := n.Start
		for item := n.FirstChild(); item != nil; item = item.NextSibling() {
			if item != n.FirstChild() {
				p.b.WriteString("\n")
				if !n.IsTight {
					p.b.WriteString("\n")
				}
			}
			mark := "- "
			if n.IsOrdered() {
				mark = strconv.Itoa(num) + ". "
				num++
			}
			p.b.WriteString(indent + mark)
			p.itemBody(item, indent+strings.Repeat(" ", len(mark)))
		}
	case *ast.Blockquote:
		p.blocks(n, indent+"> ")
	case *ast.ThematicBreak:
		p.b.WriteString(indent + "---")
	case *east.Table:
		for row := n.FirstChild(); row != nil; row = row.NextSibling() {
			if row != n.FirstChild() {
				p.b.WriteString("\n")
			}
			p.b.WriteString(indent)
			for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
				if cell != row.FirstChild() {
					p.b.WriteString(" | ")
				}
				p.inlines(cell, indent)
			}
		}
	default: // paragraphs, headings, and anything else holding inlines
		if c := n.FirstChild(); c != nil && c.Type() == ast.TypeBlock {
			p.blocks(n, indent)
			return
		}
		p.b.WriteString(indent)
		p.inlines(n, indent)
	}
}

// itemBody writes a list item's blocks, the first on the mark's line.
func (p *plainWriter) itemBody(item ast.Node, indent string) {
	for c := item.FirstChild(); c != nil; c = c.NextSibling() {
		if c != item.FirstChild() {
			p.b.WriteString("\n")
			p.block(c, indent)
			continue
		}
		// The first block goes right after the mark: write it with no
		// indent on its first line.
		var sub plainWriter
		sub.src = p.src
		sub.block(c, indent)
		p.b.WriteString(strings.TrimPrefix(sub.b.String(), indent))
	}
}

// lines writes a block's raw lines (code, HTML) as they are.
func (p *plainWriter) lines(n ast.Node, indent string) {
	var b strings.Builder
	lines := n.Lines()
	for i := range lines.Len() {
		line := lines.At(i)
		b.WriteString(indent)
		b.Write(line.Value(p.src))
	}
	if h, ok := n.(*ast.HTMLBlock); ok && h.HasClosure() {
		b.WriteString(indent)
		b.Write(h.ClosureLine.Value(p.src))
	}
	p.b.WriteString(strings.TrimRight(b.String(), "\n"))
}

// inlines writes the text of n's inline children.
func (p *plainWriter) inlines(n ast.Node, indent string) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		p.inline(c, indent)
	}
}

// inline writes one inline node.
func (p *plainWriter) inline(n ast.Node, indent string) {
	switch n := n.(type) {
	case *ast.Text:
		p.b.Write(n.Segment.Value(p.src))
		if n.SoftLineBreak() || n.HardLineBreak() {
			p.b.WriteString("\n" + indent)
		}
	case *ast.String:
		p.b.Write(n.Value)
	case *ast.CodeSpan:
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			if t, ok := c.(*ast.Text); ok {
				p.b.Write(t.Segment.Value(p.src))
			}
		}
	case *ast.AutoLink:
		p.b.Write(n.Label(p.src))
	case *ast.Link:
		start := p.b.Len()
		p.inlines(n, indent)
		label := p.b.String()[start:]
		if dest := string(n.Destination); dest != "" && dest != label {
			p.b.WriteString(" (" + dest + ")")
		}
	case *ast.Image:
		p.inlines(n, indent)
	case *ast.RawHTML:
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			p.b.Write(seg.Value(p.src))
		}
	case *east.TaskCheckBox:
		if n.IsChecked {
			p.b.WriteString("[x] ")
		} else {
			p.b.WriteString("[ ] ")
		}
	default: // emphasis, strikethrough and the like: their text only
		p.inlines(n, indent)
	}
}
