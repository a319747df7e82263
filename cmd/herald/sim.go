package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/httpserve"
	"github.com/herald-chat/herald/internal/sim"
)

func newSimCmd(opts *options) *cobra.Command {
	var (
		addr          string
		o             sim.Options
		strictSession bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a Hermes API simulator (not an agent) for demos, tests and benchmarks",
		Long: "sim serves the Hermes API (/health, /v1/models, /v1/chat/completions with SSE streaming,\n" +
			"and with --runs the runs API)\n" +
			"and answers with deterministic text that shows the turn number of each session.\n" +
			"It is a simulator: no model and no agent runs behind it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.AllowSessionWithoutKey = !strictSession
			if err := o.Validate(); err != nil {
				return err
			}
			log := newLogger(opts.stderr, 0, "text")
			o.Logger = log
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w", addr, err)
			}
			if o.Key == "" && !config.IsLoopback(ln.Addr().String()) {
				log.Warn("the simulator listens beyond this machine without a key: anyone who reaches it can use it; set --key, or listen on 127.0.0.1", "addr", ln.Addr().String())
			}
			log.Info("Hermes API simulator listening (a simulator, not an agent)", "url", "http://"+ln.Addr().String(), "auth", o.Key != "")
			simulator := sim.New(o)
			// Runs end when the command does, so that the streams of their
			// events end too and do not hold up the shutdown.
			defer context.AfterFunc(cmd.Context(), simulator.Close)()
			// Timeouts, so that nobody holds it open; no write timeout (its
			// streams last as long as an answer) and no connection caps (a
			// benchmark drives it from one address).
			return httpserve.Serve(cmd.Context(), ln, simulator, httpserve.Limits{ReadTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second})
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8642", "address to listen on")
	f.StringVar(&o.Key, "key", "", "bearer key clients must send (like API_SERVER_KEY); empty for none")
	f.StringVar(&o.Model, "model", "", "model id to list and answer with (default hermes-agent)")
	f.BoolVar(&strictSession, "strict-sessions", false, "refuse X-Hermes-Session-Id without a key (403), as the real server does")
	f.DurationVar(&o.FirstTokenDelay, "ttft", 0, "time to the first token")
	f.Float64Var(&o.TokensPerSecond, "tps", 0, "tokens per second (0: as fast as possible)")
	f.IntVar(&o.AnswerTokens, "tokens", 2*sim.SentenceWords, "filler tokens after the echo line (a multiple of the sentence's words ends the answer with a whole sentence)")
	f.BoolVar(&o.ToolProgress, "tools", false, "send tool progress events before the answer")
	f.DurationVar(&o.KeepaliveInterval, "keepalive", 0, "silence before a keepalive comment (default 30s)")
	f.IntVar(&o.FailStatus, "fail-status", 0, "fault: answer every chat request with this HTTP status")
	f.IntVar(&o.DisconnectAfter, "disconnect-after", 0, "fault: drop the connection after this many tokens")
	f.BoolVar(&o.MalformedLines, "malformed", false, "fault: send a malformed data line before the first token")
	f.BoolVar(&o.AgentError, "agent-error", false, "fault: fail halfway with finish_reason \"error\"")
	f.BoolVar(&o.RotateSessionID, "rotate-session", false, "answer each turn with a new session id, as after context compression")
	f.IntVar(&o.MaxSessions, "max-sessions", 0, fmt.Sprintf("sessions to remember the turn count of (default %d)", sim.DefaultMaxSessions))
	f.IntVar(&o.AnswerBytes, "answer-bytes", 0, "answer with this many bytes of filler text instead, in many chunks")
	f.StringVar(&o.Think, "think", "", "put a <think> block with this text before the answer")
	f.IntVar(&o.EndlessEventBytes, "endless-event-bytes", 0, "fault: after the first token, send this many bytes of data lines without ending the event")
	f.IntVar(&o.JSONAnswerBytes, "json-answer-bytes", 0, "fault: answer every chat request with a JSON completion of this many bytes of content")
	f.BoolVar(&o.HTMLAnswer, "html", false, "fault: answer every chat request with a web page (200, text/html)")
	f.StringVar(&o.RedirectTo, "redirect-to", "", "fault: redirect every request (307) to this base URL")
	f.BoolVar(&o.Runs, "runs", false, "serve the runs API (/v1/runs) besides chat completions")
	f.BoolVar(&o.RunEventsOnce, "runs-events-once", false, "serve each run's events once, to one reader, as the real server does (default: kept, resumable with Last-Event-ID)")
	return cmd
}
