// Package matrix connects Herald to Matrix with mautrix-go, end-to-end
// encryption included, in pure Go (build tag goolm, no cgo).
//
// The adapter logs in with an access token or a password (keeping the
// device and token it got under its directory, so that later starts reuse
// one device and its keys), keeps the crypto store in SQLite through
// modernc.org/sqlite, and syncs with its own loop: the sync token is
// persisted in the gateway's state store only after every message of a
// sync response has been handed over and journalled, and the very first
// sync skips the rooms' history. Nothing is ever sent in plaintext into an
// encrypted room: the room's encryption state is looked up before a send,
// and a send whose encryption fails fails.
package matrix

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// The values of Options.E2EE.
const (
	E2EEOff      = "off"      // no encryption: encrypted rooms are neither read nor written
	E2EEOptional = "optional" // encryption if it starts; a failure is logged
	E2EERequired = "required" // start-up fails if encryption cannot start
)

// Defaults for the Options left zero.
const (
	DefaultMaxLength     = 16000
	DefaultMaxMediaBytes = 100 << 20
	DefaultDeviceName    = "Herald"
)

// Adapter is the Matrix platform adapter. It is created by New and
// connects when Run is called.
type Adapter struct {
	opts  Options
	deps  platform.Deps
	rules rules
	log   *slog.Logger
	http  *http.Client

	ready     chan struct{}
	readyOnce sync.Once

	// Set by Run's start-up, before ready is closed; read by Send and the
	// event handlers. conn is nil until then.
	connMu sync.RWMutex
	conn   *conn

	mu           sync.Mutex
	encrypted    map[id.RoomID]bool // encryption state known for sure
	own          *platform.Recent[id.EventID, bool]
	botThreads   *platform.Recent[string, bool]           // room|root the bot answered in
	reactions    *platform.Recent[id.EventID, id.EventID] // asking event → the bot's reaction on it
	roomNames    *platform.Recent[id.RoomID, string]
	undecrypted  *platform.Recent[id.RoomID, time.Time] // last "cannot decrypt" notice per room
	relationSeen *platform.Recent[id.EventID, bool]     // event → sent by the bot, looked up
	syncFailed   error                                  // a handler failure in the sync being processed
	outage       platform.Outage                        // of the connection and the sync
}

// Outage implements platform.Connection: the homeserver has not answered
// the sync (or the login) for a while.
func (a *Adapter) Outage() error { return a.outage.Err() }

// conn is what a connection holds.
type conn struct {
	cli    *mautrix.Client
	crypto *cryptohelper.CryptoHelper // nil without encryption
	db     *dbutil.Database
	raw    *sql.DB
	me     identity

	// Where messages go, and Run's context, which bounds the work event
	// handlers start.
	handler platform.Handler
	runCtx  context.Context
}

var _ platform.Adapter = (*Adapter)(nil)

// New checks the options and returns an adapter that is not connected yet.
// d.Dir (the crypto store, the pickle key and a password login's session)
// and d.State (the sync token, the threads the bot answered in) are
// required; d.Allows says whose invites are taken.
func New(opts Options, d platform.Deps) (*Adapter, error) {
	if opts.Homeserver == "" {
		return nil, errors.New("matrix: no homeserver URL")
	}
	if opts.AccessToken == "" && (opts.UserID == "" || opts.Password == "") {
		return nil, errors.New("matrix: an access token, or a user id and password, are needed to log in")
	}
	if d.Dir == "" || d.State == nil {
		return nil, errors.New("matrix: Deps.Dir and Deps.State are required")
	}
	switch opts.E2EE {
	case "":
		opts.E2EE = E2EEOptional
	case E2EEOff, E2EEOptional, E2EERequired:
	default:
		return nil, fmt.Errorf("matrix: encryption mode %q: expected off, optional or required", opts.E2EE)
	}
	switch opts.SessionScope {
	case "":
		opts.SessionScope = ScopeAuto
	case ScopeAuto, ScopeRoom, ScopeThread:
	default:
		return nil, fmt.Errorf("matrix: session scope %q: expected auto, room or thread", opts.SessionScope)
	}
	if opts.MaxLength <= 0 {
		opts.MaxLength = DefaultMaxLength
	}
	if opts.Budget == (platform.Bucket{}) {
		opts.Budget = MessageBudget
	}
	if opts.MaxMediaBytes <= 0 {
		opts.MaxMediaBytes = DefaultMaxMediaBytes
	}
	if opts.DeviceName == "" {
		opts.DeviceName = DefaultDeviceName
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	r := rules{
		requireMention:       opts.RequireMention,
		freeRooms:            map[string]bool{},
		allowedRooms:         map[string]bool{},
		processNotices:       opts.ProcessNotices,
		autoThread:           opts.AutoThread,
		dmAutoThread:         opts.DMAutoThread,
		dmMentionThreads:     opts.DMMentionThreads,
		threadRequireMention: opts.ThreadRequireMention,
		scope:                opts.SessionScope,
	}
	for _, p := range opts.IgnoreUserPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("matrix: ignore pattern %q: %w", p, err)
		}
		r.ignore = append(r.ignore, re)
	}
	// No overall timeout: syncs are long polls and images may be large;
	// every request has a context deadline instead.
	transport, err := platform.Transport(opts.Proxy)
	if err != nil {
		return nil, fmt.Errorf("matrix: MATRIX_PROXY: %w", err)
	}
	client := &http.Client{Transport: transport}
	return &Adapter{
		opts:         opts,
		deps:         d,
		rules:        r,
		log:          d.Logger.With("platform", Name),
		http:         client,
		ready:        make(chan struct{}),
		encrypted:    map[id.RoomID]bool{},
		own:          platform.NewRecent[id.EventID, bool](4096),
		botThreads:   platform.NewRecent[string, bool](4096),
		reactions:    platform.NewRecent[id.EventID, id.EventID](4096),
		roomNames:    platform.NewRecent[id.RoomID, string](1024),
		undecrypted:  platform.NewRecent[id.RoomID, time.Time](1024),
		relationSeen: platform.NewRecent[id.EventID, bool](4096),
	}, nil
}

// Name is the platform's name.
func (a *Adapter) Name() string { return Name }

// MessageBudget is Synapse's default rc_message: 0.2 events a second per
// user, in bursts of up to 10 (Synapse's configuration manual, "rc_message":
// per_second 0.2, burst_count 10). Every event the bot sends counts:
// messages, edits, reactions and redactions; typing notices are not events.
// Dendrite's limiter is laxer; homeservers may set their own
// (platforms.matrix.rate and .burst).
var MessageBudget = platform.Bucket{Rate: 0.2, Burst: 10}

// Caps declares Matrix's limits: long messages, edits by m.replace,
// threads, typing, HTML, no cursor; the account's message budget, which
// reactions draw on too: replacing one (👀 by ✅) is a redaction and a
// reaction.
func (a *Adapter) Caps(chat.Target) platform.Caps {
	c := platform.Caps{
		MaxLength: a.opts.MaxLength,
		Count:     format.Runes,
		Edit:      true,
		Threads:   true,
		Typing:    true,
		Cursor:    false,
		Format:    format.HTML,
		Budgets:   []platform.Budget{{Classes: platform.Messages | platform.Markers, Account: true, Bucket: a.opts.Budget}},
	}
	if a.opts.Reactions {
		c.MarkerCalls = 2
	}
	return c
}

// Ready is closed once the first sync has been processed, with encryption
// running (or, in optional mode, known not to).
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// connection returns the live connection, or an error before Run connected.
func (a *Adapter) connection() (*conn, error) {
	a.connMu.RLock()
	defer a.connMu.RUnlock()
	if a.conn == nil {
		return nil, errors.New("matrix: not connected")
	}
	return a.conn, nil
}

// Run logs in, starts encryption, and syncs until ctx ends, handing each
// message to h. Start-up failures (login, required encryption, a crypto
// store that does not match the device) are returned with what to do.
func (a *Adapter) Run(ctx context.Context, h platform.Handler) error {
	c, err := a.connect(ctx, h)
	if c == nil {
		return err
	}
	defer a.disconnect(c)
	return a.syncLoop(ctx, c)
}

// disconnect closes what connect opened. Sends still running fail.
func (a *Adapter) disconnect(c *conn) {
	a.connMu.Lock()
	a.conn = nil
	a.connMu.Unlock()
	if c.crypto != nil {
		c.crypto.Machine().Destroy() // ends its background work
	}
	if err := c.raw.Close(); err != nil {
		a.log.Warn("closing the Matrix store", "error", err)
	}
	c.cli.Client.CloseIdleConnections()
}

// stateKey names a value the adapter keeps in the gateway's state store,
// per account so that a change of account starts afresh.
func (a *Adapter) stateKey(c *conn, name string) string {
	return "matrix:" + string(c.cli.UserID) + ":" + name
}

// pathIn is a file in the adapter's directory.
func (a *Adapter) pathIn(name string) string { return filepath.Join(a.deps.Dir, name) }

// roomKey joins a room and an event id for the bounded maps.
func roomKey(room id.RoomID, ev id.EventID) string { return string(room) + "|" + string(ev) }
