package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/herald-chat/herald/internal/platform"
)

// Sync pacing.
const (
	syncTimeout     = 30 * time.Second // the homeserver's long poll
	requestGrace    = time.Minute      // on top of it, for the request
	maxRetryDelay   = time.Minute
	timelineLimit   = 50 // events per room per sync
	startupDeadline = 2 * time.Minute
)

// connect logs in and starts encryption, retrying failures that may pass
// (network, homeserver errors) and returning at once those that will not.
// It returns no connection and no error when ctx ends first.
func (a *Adapter) connect(ctx context.Context, h platform.Handler) (*conn, error) {
	delay := platform.Backoff{Max: maxRetryDelay}
	for {
		c, err := a.tryConnect(ctx, h)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, nil // stopped while starting
		}
		if isPermanent(err) {
			return nil, fmt.Errorf("matrix: %w", err)
		}
		a.outage.Failed(err)
		wait := delay.Next()
		a.log.Warn("connecting to the Matrix homeserver failed, retrying", "error", err, "retry_in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil, nil
		}
	}
}

// tryConnect makes one attempt at connecting.
func (a *Adapter) tryConnect(runCtx context.Context, h platform.Handler) (_ *conn, err error) {
	ctx, cancel := context.WithTimeout(runCtx, startupDeadline)
	defer cancel()
	if err := os.MkdirAll(a.deps.Dir, 0o700); err != nil {
		return nil, permanent(fmt.Errorf("creating %s: %w", a.deps.Dir, err))
	}
	cli, err := mautrix.NewClient(a.opts.Homeserver, "", "")
	if err != nil {
		return nil, permanent(fmt.Errorf("MATRIX_HOMESERVER %s: %w", a.opts.Homeserver, err))
	}
	cli.Client = a.http
	cli.Log = a.zerologger()
	cli.UserAgent = "Herald (mautrix-go)"
	// Rate limits go back to the delivery layer, which waits as asked;
	// network and gateway errors are retried a little.
	cli.IgnoreRateLimit = true
	cli.DefaultHTTPRetries = 2
	cli.DefaultHTTPBackoff = time.Second
	raw, db, where, err := a.openCryptoStore()
	if err != nil {
		return nil, a.storeErr(err)
	}
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	if err := a.login(ctx, cli, storedDevice(ctx, db, a.opts.UserID)); err != nil {
		return nil, err
	}
	states := sqlstatestore.NewSQLStateStore(db, dbutil.NoopLogger, false)
	if err := states.Upgrade(ctx); err != nil {
		return nil, a.storeErr(fmt.Errorf("preparing the room state store: %w", err))
	}
	cli.StateStore = states
	syncer, ok := cli.Syncer.(*mautrix.DefaultSyncer)
	if !ok {
		return nil, permanent(errors.New("unexpected mautrix syncer"))
	}
	// Room state first, so that handlers see the members and encryption
	// that came in the same sync.
	syncer.OnEvent(cli.StateStoreSyncHandler)

	c := &conn{cli: cli, db: db, raw: raw, handler: h, runCtx: runCtx}
	if a.opts.E2EE != E2EEOff {
		helper, err := a.startCrypto(ctx, cli, db, where)
		switch {
		case err == nil:
			c.crypto = helper
			a.log.Info("end-to-end encryption is on", "user", cli.UserID, "device", cli.DeviceID, "mode", a.opts.E2EE)
		case !isPermanent(err):
			return nil, err
		case a.opts.E2EE == E2EERequired:
			return nil, permanent(fmt.Errorf("encryption is required (MATRIX_E2EE_MODE=required or MATRIX_ENCRYPTION=true) but could not start: %w", err))
		default:
			a.log.Error("encryption could not start; encrypted rooms are neither read nor answered (MATRIX_E2EE_MODE=optional)", "error", err)
		}
	} else {
		a.log.Warn("end-to-end encryption is off (MATRIX_E2EE_MODE=off): encrypted rooms are neither read nor answered")
	}
	switch {
	case c.crypto == nil:
	case a.opts.RecoveryKey != "":
		a.crossSign(ctx, c.crypto)
	case a.opts.RecoveryKeyFile != "":
		a.setUpCrossSigning(ctx, c.crypto)
	}

	c.me = identity{userID: string(cli.UserID)}
	if resp, err := cli.GetOwnDisplayName(ctx); err == nil {
		c.me.displayName = resp.DisplayName
	}
	if err := a.resolveRooms(ctx, cli); err != nil {
		return nil, err
	}
	syncer.OnEventType(event.StateMember, a.onMember)
	syncer.OnEventType(event.StateEncryption, a.onEncryption)
	syncer.OnEventType(event.EventMessage, a.onMessage)

	a.connMu.Lock()
	a.conn = c
	a.connMu.Unlock()

	if a.opts.HomeRoom.Chat != "" {
		if _, err := cli.JoinRoom(ctx, a.opts.HomeRoom.Chat, nil); err != nil {
			a.log.Warn("joining MATRIX_HOME_ROOM failed", "room", a.opts.HomeRoom.Chat, "error", err)
		}
	}
	return c, nil
}

// resolveRooms turns the aliases in the room settings into room ids.
func (a *Adapter) resolveRooms(ctx context.Context, cli *mautrix.Client) error {
	resolve := func(setting string, rooms []string, into map[string]bool) error {
		for _, r := range rooms {
			if len(r) == 0 || r[0] != '#' {
				into[r] = true
				continue
			}
			resp, err := cli.ResolveAlias(ctx, id.RoomAlias(r))
			if err != nil {
				if isPermanent(err) {
					return permanent(fmt.Errorf("%s: room alias %s: %w", setting, r, err))
				}
				return fmt.Errorf("%s: resolving %s: %w", setting, r, err)
			}
			into[string(resp.RoomID)] = true
		}
		return nil
	}
	allowed, free := map[string]bool{}, map[string]bool{}
	if err := resolve("MATRIX_ALLOWED_ROOMS", a.opts.AllowedRooms, allowed); err != nil {
		return err
	}
	if err := resolve("MATRIX_FREE_RESPONSE_ROOMS", a.opts.FreeResponseRooms, free); err != nil {
		return err
	}
	a.rules.allowedRooms, a.rules.freeRooms = allowed, free
	return nil
}

// syncLoop syncs until ctx ends. The sync token is saved in the state
// store only once every message of a response has been handed to the
// handler and journalled by the gateway; a start without a token skips
// the rooms' history.
func (a *Adapter) syncLoop(ctx context.Context, c *conn) error {
	tokenKey := a.stateKey(c, "next_batch")
	since, _, err := a.deps.State.State(ctx, tokenKey)
	if err != nil {
		return fmt.Errorf("matrix: reading the sync token: %w", err)
	}
	filterID := ""
	delay := platform.Backoff{Max: maxRetryDelay}
	retry := func(what string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		a.outage.Failed(err)
		wait := delay.Next()
		a.log.Warn(what+" failed, retrying", "error", err, "retry_in", wait)
		return platform.Sleep(ctx, wait)
	}
	for ctx.Err() == nil {
		if filterID == "" {
			resp, err := c.cli.CreateFilter(ctx, syncFilter())
			if err != nil {
				if !retry("creating the sync filter", err) {
					break
				}
				continue
			}
			filterID = resp.FilterID
		}
		timeout := syncTimeout
		if since == "" || !a.isReady() {
			timeout = 0 // catch up at once
		}
		reqCtx, cancel := context.WithTimeout(ctx, timeout+requestGrace)
		resp, err := c.cli.FullSyncRequest(reqCtx, mautrix.ReqSync{
			Timeout:  int(timeout / time.Millisecond),
			Since:    since,
			FilterID: filterID,
		})
		cancel()
		if err != nil {
			if errors.Is(err, mautrix.MUnknownToken) {
				if err := a.relogin(ctx, c); err != nil {
					return err
				}
				continue
			}
			if !retry("syncing with the Matrix homeserver", err) {
				break
			}
			continue
		}
		delay.Reset()
		a.outage.Recovered()
		if since == "" {
			skipHistory(resp)
		}
		a.mu.Lock()
		a.syncFailed = nil
		a.mu.Unlock()
		if err := c.cli.Syncer.ProcessResponse(ctx, resp, since); err != nil {
			// A handler panicked on some event: skip that response rather
			// than fail on it forever.
			a.log.Error("processing a sync response failed; its events are skipped", "error", err)
		}
		a.mu.Lock()
		failed := a.syncFailed
		a.mu.Unlock()
		if failed != nil || ctx.Err() != nil {
			// A message was not journalled, or the processing was cut
			// short by a stop: keep the token so that the next start gets
			// the response again (the gateway drops what it already has).
			break
		}
		if err := a.deps.State.SetState(ctx, tokenKey, resp.NextBatch); err != nil && ctx.Err() == nil {
			a.log.Warn("saving the sync token failed", "error", err)
		}
		since = resp.NextBatch
		a.markReady()
	}
	return nil
}

// relogin handles a token the homeserver no longer accepts: a password
// login logs in again as the same device; a configured token cannot be
// renewed.
func (a *Adapter) relogin(ctx context.Context, c *conn) error {
	if a.opts.AccessToken != "" {
		return errors.New("matrix: the homeserver no longer accepts MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN): the bot was logged out; set a new token")
	}
	a.log.Warn("the homeserver logged the bot out; logging in again with the password as the same device")
	if err := a.passwordLogin(ctx, c.cli, c.cli.DeviceID); err != nil {
		return fmt.Errorf("matrix: logging in again: %w", err)
	}
	return nil
}

// syncFilter keeps syncs small: a bounded timeline, no presence.
func syncFilter() *mautrix.Filter {
	return &mautrix.Filter{
		Presence: &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}},
		Room: &mautrix.RoomFilter{
			Timeline: &mautrix.FilterPart{Limit: timelineLimit},
		},
	}
}

// skipHistory drops the messages of a first sync, keeping state events:
// what was said before the bot's first start is not for it. Later starts
// continue from the saved token and miss nothing.
func skipHistory(resp *mautrix.RespSync) {
	keepState := func(evts []*event.Event) []*event.Event {
		var out []*event.Event
		for _, e := range evts {
			if e.StateKey != nil {
				out = append(out, e)
			}
		}
		return out
	}
	for _, room := range resp.Rooms.Join {
		room.Timeline.Events = keepState(room.Timeline.Events)
	}
	for _, room := range resp.Rooms.Leave {
		room.Timeline.Events = keepState(room.Timeline.Events)
	}
}

// markReady closes Ready once.
func (a *Adapter) markReady() {
	a.readyOnce.Do(func() {
		a.log.Info("Matrix is connected and synced")
		close(a.ready)
	})
}

func (a *Adapter) isReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// zerologger sends mautrix's logs to the adapter's slog logger: its
// warnings and errors as such, the rest at debug level.
func (a *Adapter) zerologger() zerolog.Logger {
	level := zerolog.WarnLevel
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		level = zerolog.DebugLevel
	}
	return zerolog.New(slogWriter{log: a.log.With("component", "mautrix")}).Level(level)
}

// slogWriter turns zerolog's JSON lines into slog records.
type slogWriter struct{ log *slog.Logger }

// loggedFields are the zerolog fields passed on; others (which may hold
// keys or message content) are dropped.
var loggedFields = []string{"error", "event_id", "room_id", "session_id", "user_id", "device_id", "sender", "component", "action", "duration", "url", "status_code", "method"}

func (w slogWriter) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return len(p), nil
	}
	level := slog.LevelDebug
	switch rec["level"] {
	case "warn":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	msg, _ := rec["message"].(string)
	if msg == "Request canceled" {
		level = slog.LevelDebug // a sync cut short by a stop
	}
	var attrs []any
	for _, k := range loggedFields {
		if v, ok := rec[k]; ok {
			attrs = append(attrs, k, v)
		}
	}
	w.log.Log(context.Background(), level, msg, attrs...)
	return len(p), nil
}
