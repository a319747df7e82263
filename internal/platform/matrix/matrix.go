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
	DefaultEditInterval  = 3 * time.Second
	DefaultMaxMediaBytes = 100 << 20
	DefaultDeviceName    = "Herald"
)

// Options configures an Adapter. Homeserver, Dir and State are required,
// with AccessToken or UserID + Password.
type Options struct {
	// Homeserver is the client-server API base URL.
	Homeserver string
	// AccessToken logs in as the device it belongs to.
	AccessToken string
	// UserID and Password log in when there is no AccessToken. The device
	// and token the login gives are kept in Dir and reused on later starts.
	UserID   string
	Password string
	// DeviceID asks for this device (each device has its own keys).
	DeviceID string
	// DeviceName names a device created by a password login.
	DeviceName string

	// E2EE is E2EEOff, E2EEOptional (the default) or E2EERequired.
	E2EE string
	// PickleKey protects the crypto store; empty means a key generated once
	// into Dir/pickle.key (mode 0600).
	PickleKey string
	// RecoveryKey unlocks the account's secret storage: the cross-signing
	// keys are fetched from it and the device signed, at every start.
	RecoveryKey string

	// AllowedUsers may invite the bot into rooms ("*" is everyone); AllowAll
	// allows everyone. The gateway authorizes messages with the same lists.
	AllowedUsers []string
	AllowAll     bool
	// AllowedRooms limits the rooms (ids or aliases) the bot reads; DMs
	// are exempt. Empty means every room it is in.
	AllowedRooms []string
	// RequireMention: in a room of more than two members, only messages
	// that mention the bot, reply to it or are in a thread it answered in.
	RequireMention bool
	// FreeResponseRooms take every message without a mention.
	FreeResponseRooms []string
	// IgnoreUserPatterns are regular expressions on sender user ids.
	IgnoreUserPatterns []string
	// ProcessNotices takes m.notice messages too.
	ProcessNotices bool
	// AutoThread answers top-level room messages in a thread on them.
	AutoThread bool
	// SessionScope is ScopeAuto (the default), ScopeRoom or ScopeThread.
	SessionScope string
	// Reactions marks asking messages with 👀, ✅ and ❌ (see TurnStatus).
	Reactions bool
	// HomeRoom is a room (id or alias) the bot joins at start.
	HomeRoom string
	// MaxMediaBytes is the largest image downloaded (default 100 MB).
	MaxMediaBytes int64

	// MaxLength is the longest message in characters (default 16000).
	MaxLength int
	// EditInterval is the least time between two sends or edits to one room
	// (default 3 s): with Synapse's default rc_message (0.2/s, burst 10) an
	// answer streams for over a minute before the limit would be reached.
	EditInterval time.Duration

	// Dir holds the crypto store, the pickle key and the password login's
	// session ($HERALD_HOME/matrix).
	Dir string
	// State keeps the sync token and the threads the bot answered in.
	State platform.StateStore
	// Logger receives the adapter's logs; nil discards them.
	Logger *slog.Logger
}

// Adapter is the Matrix platform adapter. It is created by New and
// connects when Run is called.
type Adapter struct {
	opts  Options
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
	own          *bounded[id.EventID, bool]
	botThreads   *bounded[string, bool]           // room|root the bot answered in
	replyThreads *bounded[id.EventID, id.EventID] // asking event → thread of its answer
	askers       *bounded[id.EventID, id.UserID]  // asking event → its sender
	reactions    *bounded[id.EventID, id.EventID] // asking event → the bot's reaction on it
	roomNames    *bounded[id.RoomID, string]
	undecrypted  *bounded[id.RoomID, time.Time] // last "cannot decrypt" notice per room
	relationSeen *bounded[id.EventID, bool]     // event → sent by the bot, looked up
	syncFailed   error                          // a handler failure in the sync being processed
}

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
func New(opts Options) (*Adapter, error) {
	if opts.Homeserver == "" {
		return nil, errors.New("matrix: no homeserver URL")
	}
	if opts.AccessToken == "" && (opts.UserID == "" || opts.Password == "") {
		return nil, errors.New("matrix: an access token, or a user id and password, are needed to log in")
	}
	if opts.Dir == "" || opts.State == nil {
		return nil, errors.New("matrix: Options.Dir and Options.State are required")
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
	if opts.EditInterval <= 0 {
		opts.EditInterval = DefaultEditInterval
	}
	if opts.MaxMediaBytes <= 0 {
		opts.MaxMediaBytes = DefaultMaxMediaBytes
	}
	if opts.DeviceName == "" {
		opts.DeviceName = DefaultDeviceName
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := rules{
		requireMention: opts.RequireMention,
		freeRooms:      map[string]bool{},
		allowedRooms:   map[string]bool{},
		processNotices: opts.ProcessNotices,
		autoThread:     opts.AutoThread,
		scope:          opts.SessionScope,
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
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	return &Adapter{
		opts:         opts,
		rules:        r,
		log:          opts.Logger.With("platform", "matrix"),
		http:         client,
		ready:        make(chan struct{}),
		encrypted:    map[id.RoomID]bool{},
		own:          newBounded[id.EventID, bool](4096),
		botThreads:   newBounded[string, bool](4096),
		replyThreads: newBounded[id.EventID, id.EventID](4096),
		askers:       newBounded[id.EventID, id.UserID](4096),
		reactions:    newBounded[id.EventID, id.EventID](4096),
		roomNames:    newBounded[id.RoomID, string](1024),
		undecrypted:  newBounded[id.RoomID, time.Time](1024),
		relationSeen: newBounded[id.EventID, bool](4096),
	}, nil
}

// Name is the platform's name.
func (a *Adapter) Name() string { return "matrix" }

// Caps declares Matrix's limits: long messages, edits by m.replace paced
// to the homeserver's rate limit, threads, typing, HTML; no cursor.
func (a *Adapter) Caps() platform.Caps {
	return platform.Caps{
		MaxLength:    a.opts.MaxLength,
		Count:        format.Runes,
		Edit:         true,
		Threads:      true,
		Typing:       true,
		Cursor:       false,
		Format:       format.HTML,
		EditInterval: a.opts.EditInterval,
	}
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
func (a *Adapter) pathIn(name string) string { return filepath.Join(a.opts.Dir, name) }

// roomKey joins a room and an event id for the bounded maps.
func roomKey(room id.RoomID, ev id.EventID) string { return string(room) + "|" + string(ev) }

// bounded is a map that forgets its oldest entries beyond a size, for the
// adapter's memory of recent events.
type bounded[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	m     map[K]V
	order []K
}

func newBounded[K comparable, V any](max int) *bounded[K, V] {
	return &bounded[K, V]{max: max, m: map[K]V{}}
}

func (b *bounded[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

func (b *bounded[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; !ok {
		b.order = append(b.order, k)
		if len(b.order) > b.max {
			delete(b.m, b.order[0])
			b.order = b.order[1:]
		}
	}
	b.m[k] = v
}

func (b *bounded[K, V]) remove(k K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; !ok {
		return
	}
	delete(b.m, k)
	for i, o := range b.order {
		if o == k {
			b.order = append(b.order[:i], b.order[i+1:]...)
			break
		}
	}
}
