package sim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// requestError is a chat request the server refuses, with the JSON error it
// answers.
type requestError struct {
	status  int
	message string
	typ     string
	code    string
}

func badRequest(message, code string) *requestError {
	return &requestError{status: http.StatusBadRequest, message: message, typ: "invalid_request_error", code: code}
}

type chatRequest struct {
	Messages []chatMessage `json:"messages"`
	Stream   bool          `json:"stream"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// turnInput is what the simulated agent takes from a request.
type turnInput struct {
	said         string // text of the last user message
	images       int    // images in the last user message
	promptTokens int
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.Requests++ })

	if s.opts.FailStatus != 0 {
		s.reject(w, s.simulatedFailure())
		return
	}
	session := r.Header.Get(SessionHeader)
	if rerr := s.checkSession(session); rerr != nil {
		s.reject(w, rerr)
		return
	}
	req, rerr := readChatRequest(w, r)
	if rerr != nil {
		s.reject(w, rerr)
		return
	}
	in, rerr := readTurnInput(req.Messages)
	if rerr != nil {
		s.reject(w, rerr)
		return
	}
	if s.opts.HTMLAnswer {
		s.log.Debug("answering with a web page (HTMLAnswer fault)")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, htmlPage)
		return
	}

	turn, replySession := s.startTurn(session)
	tokens := s.answerTokens(turn, in)
	s.log.Debug("chat turn", "session", replySession, "turn", turn, "stream", req.Stream, "tokens", len(tokens))
	a := answer{
		id:           "chatcmpl-" + randomHex(12),
		created:      s.opts.Now().Unix(),
		session:      replySession,
		tokens:       tokens,
		promptTokens: in.promptTokens,
	}
	if req.Stream && s.opts.JSONAnswerBytes == 0 {
		s.stream(w, r, a)
	} else {
		s.complete(w, r, a)
	}
}

// simulatedFailure is the error the FailStatus fault answers with.
func (s *Server) simulatedFailure() *requestError {
	typ := "invalid_request_error"
	if s.opts.FailStatus >= 500 {
		typ = "server_error"
	}
	return &requestError{
		status:  s.opts.FailStatus,
		message: fmt.Sprintf("Simulated failure (HTTP %d) from the Hermes API server simulator", s.opts.FailStatus),
		typ:     typ,
		code:    "simulated_failure",
	}
}

// answerTokens is the simulated agent's answer to a turn, split into the
// tokens it is streamed in.
func (s *Server) answerTokens(turn int, in turnInput) []string {
	var tokens []string
	switch {
	case s.opts.AnswerBytes > 0:
		tokens = fillerTokens(s.opts.AnswerBytes)
	case s.opts.JSONAnswerBytes > 0:
		tokens = fillerTokens(s.opts.JSONAnswerBytes)
	default:
		tokens = replyTokens(turn, in, s.opts.AnswerTokens)
	}
	if s.opts.Think != "" {
		tokens = append(splitTokens("<think>\n"+s.opts.Think+"\n</think>\n\n"), tokens...)
	}
	return tokens
}

// htmlPage is what the HTMLAnswer fault sends: a login portal's page.
const htmlPage = `<!DOCTYPE html>
<html><head><title>Sign in</title></head>
<body><h1>Sign in to continue</h1><p>This page comes from the Hermes API server simulator (HTMLAnswer fault).</p></body></html>
`

// reject answers a refused chat request and counts it.
func (s *Server) reject(w http.ResponseWriter, e *requestError) {
	s.count(func(st *Stats) { st.Rejected++ })
	s.log.Debug("rejected chat request", "status", e.status, "code", e.code, "message", e.message)
	writeError(w, e.status, e.message, e.typ, e.code)
}

// checkSession refuses a session id the client may not continue; "" (a new
// session) always passes.
func (s *Server) checkSession(id string) *requestError {
	if id == "" {
		return nil
	}
	if strings.ContainsAny(id, "\r\n\x00") {
		return badRequest("Invalid session ID", "invalid_session_id")
	}
	if s.opts.Key == "" && !s.opts.AllowSessionWithoutKey {
		return &requestError{
			status:  http.StatusForbidden,
			message: "Session continuation requires API key authentication",
			typ:     "invalid_request_error",
			code:    "session_requires_auth",
		}
	}
	return nil
}

func readChatRequest(w http.ResponseWriter, r *http.Request) (*chatRequest, *requestError) {
	body, rerr := readBody(w, r)
	if rerr != nil {
		return nil, rerr
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("Invalid JSON in request body", "invalid_json")
	}
	if len(req.Messages) == 0 {
		return nil, badRequest("'messages' must be a non-empty array", "missing_messages")
	}
	return &req, nil
}

// readBody reads a request body of at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	tooLarge := &requestError{
		status:  http.StatusRequestEntityTooLarge,
		message: fmt.Sprintf("Request body too large (limit %d bytes)", MaxBodyBytes),
		typ:     "invalid_request_error",
		code:    "request_too_large",
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge
		}
		return nil, badRequest("Could not read request body", "invalid_body")
	}
	return body, nil
}

// readTurnInput checks every message's content and picks out what the
// simulated agent answers to: the last user message.
func readTurnInput(msgs []chatMessage) (turnInput, *requestError) {
	var in turnInput
	for _, m := range msgs {
		text, images, rerr := readContent(m.Content)
		if rerr != nil {
			return turnInput{}, rerr
		}
		in.promptTokens += images
		for range strings.FieldsSeq(text) {
			in.promptTokens++
		}
		if m.Role == "user" {
			in.said, in.images = text, images
		}
	}
	return in, nil
}

// readContent accepts a string, null, or an array of text and image_url
// parts, and returns the text and the number of images.
func readContent(raw json.RawMessage) (string, int, *requestError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", 0, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, 0, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", 0, badRequest("Message content must be a string or an array of content parts", "invalid_content")
	}
	var texts []string
	images := 0
	for _, p := range parts {
		switch p.Type {
		case "text":
			texts = append(texts, p.Text)
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return "", 0, badRequest("image_url content part needs image_url.url", "invalid_content")
			}
			images++
		default:
			return "", 0, badRequest(fmt.Sprintf("Unsupported content part type %q", p.Type), "unsupported_content_type")
		}
	}
	return strings.Join(texts, " "), images, nil
}

// startTurn advances the session's turn counter and returns the turn number
// and the session id to echo (a new one for a fresh or rotated session).
// The session becomes the most recent; past MaxSessions, the least recent
// is forgotten.
func (s *Server) startTurn(session string) (turn int, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startTurnLocked(session)
}

func (s *Server) startTurnLocked(session string) (turn int, reply string) {
	if session == "" {
		session = s.newSessionIDLocked()
	}
	turn = s.stats.Turns[session] + 1
	reply = session
	if s.opts.RotateSessionID {
		reply = s.newSessionIDLocked()
	}
	s.countLocked(func(st *Stats) {
		s.forgetLocked(session)
		st.Turns[reply] = turn
		s.places[reply] = s.recent.PushFront(reply)
		for s.recent.Len() > s.opts.MaxSessions {
			s.forgetLocked(s.recent.Back().Value.(string))
		}
	})
	return turn, reply
}

// forgetLocked drops a session's turn count, if it has one.
func (s *Server) forgetLocked(id string) {
	if e, ok := s.places[id]; ok {
		s.recent.Remove(e)
		delete(s.places, id)
		delete(s.stats.Turns, id)
	}
}

// newSessionIDLocked makes an unused id shaped like the real server's:
// YYYYMMDD_HHMMSS_ and six lowercase hex digits.
func (s *Server) newSessionIDLocked() string {
	for {
		id := s.opts.Now().Format("20060102_150405") + "_" + randomHex(3)
		if _, taken := s.stats.Turns[id]; !taken {
			return id
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read
	return hex.EncodeToString(b)
}

// filler is cycled to pad answers; it too says this is not a real agent.
var filler = strings.Fields("This is simulated filler text from the Hermes API server simulator, not a real agent.")

// SentenceWords is how many words the filler's sentence has: an answer
// whose Options.AnswerTokens is a multiple of it ends in a whole sentence.
var SentenceWords = len(filler)

// maxEcho bounds the echoed user text, in runes, so huge prompts do not
// make huge answers.
const maxEcho = 200

// echo returns s with runs of white space made single spaces, cut to
// maxEcho runes.
func echo(s string) string {
	var b strings.Builder
	n := 0
	for word := range strings.FieldsSeq(s) {
		if n > 0 {
			if n == maxEcho {
				return b.String() + "…"
			}
			b.WriteByte(' ')
			n++
		}
		for _, r := range word {
			if n == maxEcho {
				return b.String() + "…"
			}
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}

// replyTokens builds the deterministic answer, split into tokens.
func replyTokens(turn int, in turnInput, fillerTokens int) []string {
	return splitTokens(reply(turn, in, fillerTokens))
}

// Answer is the simulator's answer to said, without images, at a
// session's turn, with fillerTokens (Options.AnswerTokens) of filler: for
// tests that know what the chat must end with.
func Answer(turn int, said string, fillerTokens int) string {
	return reply(turn, turnInput{said: said}, fillerTokens)
}

// reply is the deterministic answer: the echo line; the samples of
// formatting the message asks for (see samples); then at least
// fillerTokens words of filler (a multiple of SentenceWords ends the
// answer with a whole sentence).
func reply(turn int, in turnInput, fillerTokens int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Hermes simulator · turn %d] You said: \"%s\"", turn, echo(in.said))
	switch {
	case in.images == 1:
		b.WriteString(" (+1 image)")
	case in.images > 1:
		fmt.Fprintf(&b, " (+%d images)", in.images)
	}
	b.WriteString(".")
	sep := " "
	if shown := samples(in.said); shown != "" {
		b.WriteString("\n\n" + shown)
		sep = "\n\n"
	}
	for i := range fillerTokens {
		b.WriteString(sep + filler[i%len(filler)])
		sep = " "
	}
	return b.String()
}

// The formatting a chat renders, shown when a message names it, so that
// a first run shows what the web chat and each platform make of markdown.
var formatSamples = []struct{ word, sample string }{
	{"list", "A list:\n\n- one item\n- another, with **bold** and *italics*\n- a third, with `code`"},
	{"code", "A code block:\n\n```go\nfunc greet(name string) string {\n\treturn \"Hello, \" + name\n}\n```"},
	{"table", "A table:\n\n| platform | streams by |\n|---|---|\n| web chat | its own events |\n| Telegram | drafts or edits |"},
	{"link", "A link: [the Hermes agent](https://github.com/NousResearch/hermes-agent)."},
}

// samples is the formatting samples said asks for by name ("list",
// "code", "table", "link"), or all of them for "markdown" or
// "formatting"; "" for none.
func samples(said string) string {
	said = strings.ToLower(said)
	all := strings.Contains(said, "markdown") || strings.Contains(said, "formatting")
	var shown []string
	for _, s := range formatSamples {
		if all || strings.Contains(said, s.word) {
			shown = append(shown, s.sample)
		}
	}
	return strings.Join(shown, "\n\n")
}

// splitTokens cuts text into the tokens that are streamed one per chunk:
// each word with its trailing space, the last word without one.
func splitTokens(text string) []string {
	var tokens []string
	for _, t := range strings.SplitAfter(text, " ") {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens
}

// answerPiece is the size of the filler pieces fillerTokens cuts a large
// answer into: our choice, a paragraph of some eighty words.
const answerPiece = 512

// piece is one answerPiece bytes of filler words ending in a line break.
var piece = func() string {
	var b strings.Builder
	for i := 0; b.Len() < answerPiece-1; i++ {
		b.WriteString(filler[i%len(filler)])
		b.WriteByte(' ')
	}
	return b.String()[:answerPiece-1] + "\n"
}()

// fillerTokens is exactly n bytes of filler text, as whole pieces and the
// start of one. The pieces share one string, so the answer takes little
// memory however long it is.
func fillerTokens(n int) []string {
	tokens := make([]string, 0, n/answerPiece+1)
	for ; n >= answerPiece; n -= answerPiece {
		tokens = append(tokens, piece)
	}
	if n > 0 {
		tokens = append(tokens, piece[:n])
	}
	return tokens
}

// answer is one reply being sent.
type answer struct {
	id           string
	created      int64
	session      string
	tokens       []string
	promptTokens int
}

func (a answer) usage() *usage {
	return &usage{
		PromptTokens:     a.promptTokens,
		CompletionTokens: len(a.tokens),
		TotalTokens:      a.promptTokens + len(a.tokens),
	}
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// tokenInterval is the pause between two content tokens.
func (s *Server) tokenInterval() time.Duration {
	if s.opts.TokensPerSecond == 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / s.opts.TokensPerSecond)
}

type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage"`
}

type completionChoice struct {
	Index        int               `json:"index"`
	Message      completionMessage `json:"message"`
	FinishReason string            `json:"finish_reason"`
}

type completionMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// complete answers a non-streaming request after the time the stream would
// have taken.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, a answer) {
	if s.opts.DisconnectAfter > 0 {
		s.abort(a)
	}
	think := s.opts.FirstTokenDelay + time.Duration(len(a.tokens)-1)*s.tokenInterval()
	if think > 0 {
		t := time.NewTimer(think)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.gone(a, r.Context().Err())
			return
		}
	}
	if s.opts.AgentError {
		s.reject(w, &requestError{
			status:  http.StatusInternalServerError,
			message: "Simulated agent failure (Hermes API server simulator)",
			typ:     "server_error",
			code:    "agent_error",
		})
		return
	}
	// The content is written a token at a time inside the rest of the
	// completion, so that a huge answer (JSONAnswerBytes) is never held
	// whole.
	envelope, err := marshal(completion{
		ID:      a.id,
		Object:  "chat.completion",
		Created: a.created,
		Model:   s.opts.Model,
		Choices: []completionChoice{{
			Message:      completionMessage{Role: "assistant", Content: contentMark},
			FinishReason: "stop",
		}},
		Usage: a.usage(),
	})
	if err != nil {
		panic(err) // only our own fixed types are marshalled
	}
	before, after, _ := bytes.Cut(envelope, []byte(contentMark))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(SessionHeader, a.session)
	w.WriteHeader(http.StatusOK)
	if err := writeContent(w, before, a.tokens, after); err != nil {
		s.gone(a, err)
		return
	}
	s.count(func(st *Stats) { st.Completed++ })
}

// contentMark stands in for the content while a completion is marshalled:
// a private-use character, which the completion's other fields (ids, the
// model name) do not hold.
const contentMark = "\uE000"

// writeContent writes before, the tokens as the inside of a JSON string,
// and after. A token that repeats, as filler pieces do, is encoded once.
func writeContent(w io.Writer, before []byte, tokens []string, after []byte) error {
	if _, err := w.Write(before); err != nil {
		return err
	}
	var last string
	var encoded []byte
	for i, tok := range tokens {
		if i == 0 || tok != last {
			q, _ := marshal(tok) // a string always marshals
			last, encoded = tok, q[1:len(q)-1]
		}
		if _, err := w.Write(encoded); err != nil {
			return err
		}
	}
	_, err := w.Write(after)
	return err
}

// gone records a client that left before its answer was complete.
func (s *Server) gone(a answer, err error) {
	s.log.Info("client left before the answer was complete", "session", a.session, "id", a.id, "err", err)
	s.count(func(st *Stats) { st.ClientGone++ })
}

// abort records a DisconnectAfter or EndlessEventBytes fault and drops the
// connection: net/http closes it without ending the response when a
// handler panics with http.ErrAbortHandler.
func (s *Server) abort(a answer) {
	s.log.Info("cutting the connection (fault)", "session", a.session, "id", a.id)
	s.count(func(st *Stats) { st.Aborted++ })
	panic(http.ErrAbortHandler)
}
