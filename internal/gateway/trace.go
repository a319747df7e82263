package gateway

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-chat/herald/internal/agent"
)

// tracerName names the tracer of the turns' spans.
const tracerName = "github.com/herald-chat/herald/internal/gateway"

// startSpan starts the span of a running turn, whose children are its
// journal writes, its agent request and its platform calls (see traced).
// Its attributes are ids and kinds, never what was written.
func (r *Runner) startSpan(j *job) {
	src := j.turn.Inbound.Source
	_, j.span = r.tracer.Start(j.ctx, "turn", trace.WithAttributes(
		attribute.Int64("herald.turn", j.turn.ID),
		attribute.String("herald.platform", src.Platform),
		attribute.String("herald.chat.type", string(src.ChatType)),
	))
}

// traced is ctx carrying the turn's span: what is done under it is a
// child of the turn's.
func (j *job) traced(ctx context.Context) context.Context {
	return trace.ContextWithSpan(ctx, j.span)
}

// journal makes one journal write, a span of the turn ctx carries (none
// without one). The write is not cancelled with ctx: what a turn's state
// depends on is written all the same.
func journal(ctx context.Context, what string, write func(context.Context) error) error {
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(context.WithoutCancel(ctx), "journal",
		trace.WithAttributes(attribute.String("herald.journal.write", what)))
	defer span.End()
	err := write(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "")
	}
	return err
}

// agentFailed tells the operator of a turn the agent server failed, which
// the chat shows as an error: a warning on the turn's log and the agent
// request's span, with the error's kind and HTTP status.
func agentFailed(log *slog.Logger, request trace.Span, err error) {
	kind := errorKind(err)
	attrs := []any{"kind", kind, "error", err}
	request.SetStatus(codes.Error, kind)
	if status, ok := errors.AsType[*agent.StatusError](err); ok {
		attrs = append(attrs, "status", status.Status)
		request.SetAttributes(attribute.Int("http.response.status_code", status.Status))
	}
	log.Warn("the agent server failed the turn", attrs...)
}
