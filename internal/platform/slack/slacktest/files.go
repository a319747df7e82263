package slacktest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Users' files are served at their url_private and url_private_download,
// {BaseURL}/files-pri/<team>-<file id>[/download]/<name>, to a client that
// sends a token with access in an Authorization: Bearer header
// (docs.slack.dev/reference/objects/file-object, on authentication for
// url_private). Without it Slack does not answer 401 but 200 with its
// sign-in page in HTML, which a client that does not check the content
// type would take for the file.

// loginPage is what a download without the bot's token gets.
const loginPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Slack</title></head>
<body><h1>Sign in to Herald</h1><form action="/signin" method="post">
<input type="email" name="email"><input type="password" name="password">
<button type="submit">Sign in</button></form></body></html>
`

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	key, name, _ := strings.Cut(rest, "/")
	if n, ok := strings.CutPrefix(name, "download/"); ok {
		name = n
	}
	id, _ := strings.CutPrefix(key, s.TeamID+"-")
	token, _ := bearer(r)

	s.mu.Lock()
	call := Call{At: time.Now(), Method: "files-pri", Params: map[string]string{"file": id, "name": name},
		Status: http.StatusOK}
	f := s.files[id]
	if f != nil && (f.Name != name || !strings.HasPrefix(key, s.TeamID+"-")) {
		f = nil
	}
	switch {
	case f == nil:
		call.Status, call.Error = http.StatusNotFound, "file_not_found"
	case token == "":
		call.Error = "not_authed"
	case token != s.BotToken:
		call.Error = "invalid_auth"
	}
	s.recordLocked(call)
	s.mu.Unlock()

	switch {
	case f == nil:
		http.NotFound(w, r)
	case call.Error != "":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(loginPage))
	default:
		ct := f.MimeType
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
		_, _ = w.Write(f.Data)
	}
}
