package config

import (
	"bytes"
	"fmt"
	"strings"
)

// parseDotenv reads a .env file as Hermes's and Docker's are written:
// NAME=value lines, an optional "export " before the name, blank lines and
// "#" comments. Values are taken literally: "$NAME" and "${NAME}" are not
// expanded, since a key like "key$SECRET" must reach the server whole.
// A name is anything without white space, quotes, "#" or "="; names
// Herald does not read are ignored. Quoting works as in shells and python-dotenv: single quotes keep every
// byte, double quotes understand \n, \r, \t, \", \\ and \$, and either may
// span lines (a PEM key); an unquoted value ends at a " #" comment and is
// trimmed. A UTF-8 byte order mark, CRLF and (in a file without LF) CR
// line endings are accepted.
//
// Errors name the line and the variable but never a value, which may be a
// secret.
func parseDotenv(data []byte) (map[string]string, error) {
	text := string(bytes.TrimPrefix(data, []byte("\uFEFF")))
	if !strings.Contains(text, "\n") {
		text = strings.ReplaceAll(text, "\r", "\n") // classic Mac line endings
	}
	p := dotenvParser{rest: text, line: 1}
	vars := map[string]string{}
	for p.rest != "" {
		name, value, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if ok {
			vars[name] = value
		}
	}
	return vars, nil
}

type dotenvParser struct {
	rest string // what is left to read
	line int    // the line rest starts on
}

// takeLine returns the rest of the current line without its ending.
func (p *dotenvParser) takeLine() string {
	i := strings.IndexByte(p.rest, '\n')
	if i < 0 {
		s := p.rest
		p.rest = ""
		return strings.TrimSuffix(s, "\r")
	}
	s := p.rest[:i]
	p.rest = p.rest[i+1:]
	p.line++
	return strings.TrimSuffix(s, "\r")
}

// next reads one line, or one assignment whose quoted value spans lines;
// ok is false for blank and comment lines.
func (p *dotenvParser) next() (name, value string, ok bool, err error) {
	start := p.line
	line, _, _ := strings.Cut(p.rest, "\n")
	if trimmed := strings.TrimSpace(line); trimmed == "" || trimmed[0] == '#' {
		p.takeLine()
		return "", "", false, nil
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		p.takeLine()
		return "", "", false, fmt.Errorf("line %d: want NAME=value", start)
	}
	// The name is not quoted in errors: a pasted line may hold a secret.
	name = strings.TrimSpace(line[:eq])
	if rest, ok := strings.CutPrefix(name, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		name = strings.TrimSpace(rest)
	}
	if !validEnvName(name) {
		p.takeLine()
		return "", "", false, fmt.Errorf("line %d: the text before \"=\" is not a variable name", start)
	}
	// Only the part up to the value is read as a line: a quoted value may
	// go on past the line's end.
	p.rest = strings.TrimLeft(p.rest[eq+1:], " \t")
	switch {
	case strings.HasPrefix(p.rest, "'"):
		value, err = p.quoted('\'', start, name)
	case strings.HasPrefix(p.rest, `"`):
		value, err = p.quoted('"', start, name)
	default:
		value = p.takeLine()
		if i := strings.Index(value, " #"); i >= 0 {
			value = value[:i]
		} else if i := strings.Index(value, "\t#"); i >= 0 {
			value = value[:i]
		}
		value = strings.TrimSpace(value)
	}
	return name, value, err == nil, err
}

// quoted reads a value in quotes q (p.rest starts at the opening quote) and
// what may follow it on its line: spaces and a comment.
func (p *dotenvParser) quoted(q byte, start int, name string) (string, error) {
	var b strings.Builder
	s := p.rest[1:]
	for i := 0; ; i++ {
		if i >= len(s) {
			return "", fmt.Errorf("line %d: the value of %s has no closing %c", start, name, q)
		}
		c := s[i]
		switch {
		case c == q:
			p.line += strings.Count(s[:i], "\n")
			p.rest = s[i+1:]
			end := p.line
			after := strings.TrimSpace(p.takeLine())
			if after != "" && after[0] != '#' {
				return "", fmt.Errorf("line %d: unexpected text after the quoted value of %s", end, name)
			}
			return b.String(), nil
		case c == '\\' && q == '"' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(s[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
			// A CRLF file's line break inside quotes is one "\n".
		default:
			b.WriteByte(c)
		}
	}
}

// validEnvName accepts what a .env file can hold as a name: no white
// space, quotes, "#" or "=". Names Herald does not read (MY-VAR, a.b) are
// accepted and ignored, as the environment's are.
func validEnvName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n'\"#=")
}
