// Package completions is the client both backends share: one streaming
// request to an OpenAI-compatible /v1/chat/completions endpoint, read with
// the SSE reader, turned into agent events and a Result.
package completions

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/sse"
)

// ToolProgressEvent is the SSE event name Hermes uses for tool progress.
const ToolProgressEvent = "hermes.tool.progress"

// maxErrorBody bounds how much of an error answer is read (and logged):
// our choice, enough for any JSON error and the start of an error page.
const maxErrorBody = 64 << 10

// limitSetting names the setting behind MaxEventBytes, so that a failure
// says what the operator can raise.
const limitSetting = "gateway.max_event_bytes (HERALD_MAX_EVENT_BYTES)"

// Limits bound what an agent server can make Herald hold of one answer.
type Limits struct {
	// MaxEventBytes bounds one event of the stream (and one line of it),
	// or the whole answer when the server answers with JSON; 0 means
	// sse.DefaultLimit. Beyond it the turn fails.
	MaxEventBytes int
	// MaxAnswerBytes bounds an answer's text: the answer is cut there,
	// with a note, and the rest is not read. 0 means no bound.
	MaxAnswerBytes int
}

// Client sends chat completion requests to one endpoint.
type Client struct {
	// Endpoint is the full URL of the chat completions endpoint.
	Endpoint string
	// Key is the bearer key; empty sends no Authorization header.
	Key string
	// Model is the model name in the request body.
	Model string
	// Server names the upstream in user-facing notices ("Proxy", "Model server").
	Server string
	// HTTP sends the requests; see NewHTTPClient.
	HTTP *http.Client
	// IdleTimeout fails the turn when the server sends nothing for this long.
	IdleTimeout time.Duration
	Limits
	// Logger receives one line per turn; nil discards.
	Logger *slog.Logger
}

// NewHTTPClient returns an HTTP client for streaming turns: a connect
// timeout, no overall deadline (answers may take many minutes), no proxy
// from the environment (the registry is the only reader of the
// environment), and no redirects (the Client refuses them whatever HTTP
// client it is given).
func NewHTTPClient(connectTimeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{CheckRedirect: refuseRedirect, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: connectTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
		// Each connection keeps its buffers for its life, one per answer
		// streaming; requests are small and an answer arrives a chunk at a
		// time, so small buffers do (larger writes bypass them).
		ReadBufferSize:  2 << 10,
		WriteBufferSize: 1 << 10,
	}}
}

// Call is one request: the turn, the system text, and extra headers.
type Call struct {
	Turn   agent.Turn
	System string
	Header http.Header
}

// Message is one message as the chat completions API takes it: Content is
// a string, or a list of content parts when images come with the text.
type Message struct {
	Role    chat.Role `json:"role"`
	Content any       `json:"content"`
}

// contentPart is a text or image_url part of a user message.
type contentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

// Messages builds the request's messages: a system message only when system
// is non-empty, then the history's user and assistant entries that carry
// text, then the new user message last, with its images as data-URL
// image_url parts.
func Messages(system string, history []chat.Message, message string, images []chat.Attachment) []Message {
	msgs := make([]Message, 0, len(history)+2)
	if system != "" {
		msgs = append(msgs, Message{Role: chat.System, Content: system})
	}
	for _, m := range history {
		if (m.Role == chat.User || m.Role == chat.Assistant) && m.Content != "" {
			msgs = append(msgs, Message{Role: m.Role, Content: m.Content})
		}
	}
	if len(images) == 0 {
		return append(msgs, Message{Role: chat.User, Content: message})
	}
	parts := []contentPart{{Type: "text", Text: message}}
	for _, img := range images {
		url := "data:" + img.MIMEType + ";base64," + base64.StdEncoding.EncodeToString(img.Data)
		parts = append(parts, contentPart{Type: "image_url", ImageURL: &imageURL{URL: url}})
	}
	return append(msgs, Message{Role: chat.User, Content: parts})
}

type requestBody struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
}

// Run performs one turn. It returns the Result and the response headers (nil
// when no response arrived), from which a backend reads what is its own.
func (c *Client) Run(ctx context.Context, call Call, emit func(agent.Event)) (agent.Result, http.Header) {
	start := time.Now()
	st := &stream{emit: emit, log: c.log(), limit: c.limit(), maxText: c.MaxAnswerBytes}
	header, err := c.do(ctx, call, st)
	text := st.text.String()
	res := agent.Result{
		FinalResponse: agent.FinalText(c.Server, text, err),
		Text:          text,
		SessionID:     call.Turn.SessionID,
		Err:           err,
	}
	attrs := []any{"server", c.Server, "session", res.SessionID,
		"chars", len(text), "finish", st.finish, "duration", time.Since(start), "error", err}
	// A failed turn is the gateway's warning, with the turn's ids.
	c.log().Debug("turn finished", attrs...)
	return res, header
}

// limit is the bound on one event, or on a JSON answer.
func (c *Client) limit() int {
	if c.MaxEventBytes <= 0 {
		return sse.DefaultLimit
	}
	return c.MaxEventBytes
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// do sends the request and reads the answer into st.
func (c *Client) do(parent context.Context, call Call, st *stream) (http.Header, error) {
	body, err := json.Marshal(requestBody{
		Model:    c.Model,
		Messages: Messages(call.System, call.Turn.History, call.Turn.Message, call.Turn.Images),
		Stream:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}

	// The idle timer covers the wait for the response headers and every
	// gap between reads; any byte resets it.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	idle := time.AfterFunc(c.IdleTimeout, func() { cancel(agent.ErrIdleTimeout) })
	defer idle.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	for k, vs := range call.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")

	resp, err := c.Send(req)
	if err != nil {
		return nil, TransportError(ctx, parent, err)
	}
	defer resp.Body.Close()
	r := IdleReader(resp.Body, idle, c.IdleTimeout)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, c.StatusError(resp, r)
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mediaType {
	case "application/json":
		err = st.readCompletion(r)
	case "text/html", "application/xhtml+xml":
		data, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
		c.log().Debug("the agent server answered with a web page", "server", c.Server, "body", string(data))
		err = fmt.Errorf("%w (it sent a web page, Content-Type %s)", agent.ErrNotAStream, mediaType)
	default:
		// Servers that send events under another type, or none, are read
		// as a stream all the same.
		err = st.readEvents(r, mediaType == "text/event-stream")
	}
	switch {
	case err == nil:
	case parent.Err() != nil:
		err = parent.Err()
	case errors.Is(context.Cause(ctx), agent.ErrIdleTimeout):
		err = agent.ErrIdleTimeout
	case !isAgentError(err):
		err = TransportError(ctx, parent, err)
	}
	return resp.Header, err
}

// Send sends req with the bearer key and returns the first answer, a
// redirect too: the key, the body and the identity headers are for the
// configured server only. (Go would follow a redirect to another port of
// the same host with the key.) Whatever HTTP client the Client was given,
// its copy here follows no redirect. The trace req's context carries (a
// turn's) goes with it as a W3C traceparent, so that the agent server's
// own spans join it.
func (c *Client) Send(req *http.Request) (*http.Response, error) {
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	propagation.TraceContext{}.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	hc := *c.HTTP
	hc.CheckRedirect = refuseRedirect
	return hc.Do(req)
}

// StatusError reads the start of an error answer, whose body is body
// (resp.Body, or a reader over it), into the error a chat may show; the
// body goes to the debug log.
func (c *Client) StatusError(resp *http.Response, body io.Reader) *agent.StatusError {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	data, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	c.log().Debug("the agent server answered with an error", "server", c.Server, "url", resp.Request.URL.Path,
		"status", resp.StatusCode, "content_type", mediaType, "body", string(data))
	return &agent.StatusError{Status: resp.StatusCode, Message: errorSummary(resp, mediaType, data)}
}

// refuseRedirect makes an HTTP client return a redirect as the answer.
func refuseRedirect(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// Ping checks that the server answers a GET of target with a 2xx status:
// otherwise the error is an *agent.StatusError or *agent.ConnectionError.
func (c *Client) Ping(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := c.Send(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return &agent.ConnectionError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %w", c.Server, c.StatusError(resp, resp.Body))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// isAgentError tells errors that describe the answer from those of the connection.
func isAgentError(err error) bool {
	var se *agent.StreamError
	var tooLong *agent.AnswerTooLongError
	return errors.Is(err, agent.ErrAgentFailed) || errors.Is(err, agent.ErrIncomplete) ||
		errors.Is(err, agent.ErrTooLarge) || errors.Is(err, agent.ErrNotAStream) ||
		errors.As(err, &se) || errors.As(err, &tooLong)
}

// TransportError names why a request failed: the end of parent (the
// caller's cancellation), the idle timeout (ctx's cause), or the
// connection.
func TransportError(ctx, parent context.Context, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	if cause := context.Cause(ctx); errors.Is(cause, agent.ErrIdleTimeout) {
		return agent.ErrIdleTimeout
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return &agent.ConnectionError{Err: err}
}

// errorSummary is what a chat shows of an error answer (see
// agent.Summary): the message of a JSON error body, else a text body's
// first line, else the status text; never a web page. A redirect names
// where it points, since it is not followed.
func errorSummary(resp *http.Response, mediaType string, data []byte) string {
	status := http.StatusText(resp.StatusCode)
	if status == "" {
		status = "unknown status"
	}
	var msg string
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		msg = status
		if loc := redirectSite(resp.Header.Get("Location")); loc != "" {
			msg += " to " + loc
		}
		return msg + "; redirects are not followed"
	case json.Unmarshal(data, &body) == nil:
		msg = agent.Summary(jsonErrorMessage(body.Error))
	case mediaType != "text/html" && mediaType != "application/xhtml+xml":
		msg = agent.Summary(string(data))
	}
	if msg == "" {
		return status
	}
	return msg
}

// redirectSite is where a redirect points, as far as a chat may see it:
// the scheme, host and port only, since a path or query may carry a
// signed token and the user part a password; "" when it is not a URL.
func redirectSite(location string) string {
	u, err := url.Parse(strings.TrimSpace(location))
	if err != nil || u.Host == "" {
		return ""
	}
	return agent.Summary(u.Scheme + "://" + u.Host)
}

// jsonErrorMessage reads the error of a JSON error body in the two shapes
// servers use: {"message": "..."} (OpenAI and compatible servers) or a
// string (Ollama).
func jsonErrorMessage(raw json.RawMessage) string {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text
	}
	var obj struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &obj) // another shape has no message to show
	return obj.Message
}

// IdleReader is r resetting timer to d whenever bytes arrive: an idle
// timeout that covers every gap between reads.
func IdleReader(r io.Reader, timer *time.Timer, d time.Duration) io.Reader {
	return &idleReader{r: r, timer: timer, d: d}
}

// idleReader resets the idle timer whenever bytes arrive.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.timer.Reset(i.d)
	}
	return n, err
}
