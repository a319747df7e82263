package matrix

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

func TestPickleKeyIsGeneratedOnceIntoAPrivateFile(t *testing.T) {
	dir := t.TempDir()
	key, err := loadPickleKey(t.Context(), dirKeeper{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, pickleKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("pickle key file mode %o, want 600", perm)
	}
	if len(key) < 32 {
		t.Errorf("pickle key of %d bytes", len(key))
	}
	again, err := loadPickleKey(t.Context(), dirKeeper{dir}, "")
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("second load = %q, %v; want the same key", again, err)
	}
	// A file made readable by others is made private again.
	if err := os.Chmod(filepath.Join(dir, pickleKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPickleKey(t.Context(), dirKeeper{dir}, ""); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(filepath.Join(dir, pickleKeyFile)); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %o after load, want 600", info.Mode().Perm())
	}
	// A configured key wins and writes nothing.
	other := t.TempDir()
	if k, err := loadPickleKey(t.Context(), dirKeeper{other}, "configured-key-0123456789"); err != nil || string(k) != "configured-key-0123456789" {
		t.Errorf("configured key = %q, %v", k, err)
	}
	if _, err := os.Stat(filepath.Join(other, pickleKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a pickle key file was written although MATRIX_PICKLE_KEY is set")
	}
}

func TestCryptoStoreIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), storeFile)
	raw, _, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(name), perm)
		}
	}
}

func TestSessionFileIsPrivate(t *testing.T) {
	keep := dirKeeper{t.TempDir()}
	path := keep.where(sessionFile)
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSession(t.Context(), keep, session{UserID: "@b:hs", DeviceID: "D", AccessToken: "secret"}); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %o, want 600", info.Mode().Perm())
	}
	s, err := readSession(t.Context(), keep)
	if err != nil || s.DeviceID != "D" || s.AccessToken != "secret" {
		t.Errorf("readSession = %+v, %v", s, err)
	}
}

func TestCryptoStoreMismatchMessages(t *testing.T) {
	hasKeys := func(has bool) func() (bool, error) { return func() (bool, error) { return has, nil } }
	cases := []struct {
		name  string
		check storeCheck
		want  []string // in the message; nil means no error
	}{
		{"a new store for a new device", storeCheck{path: "/h/crypto.db", device: "NEW", serverHasKeys: hasKeys(false)}, nil},
		{"the store of this device", storeCheck{path: "/h/crypto.db", device: "DEV", stored: "DEV"}, nil},
		{"the device changed", storeCheck{path: "/h/crypto.db", device: "NEW", stored: "OLD"},
			[]string{"belongs to device OLD", "logged in as device NEW", "MATRIX_DEVICE_ID=OLD", "move /h/crypto.db away"}},
		{"the store was deleted", storeCheck{path: "/h/crypto.db", device: "DEV", serverHasKeys: hasKeys(true)},
			[]string{"device DEV already has encryption keys", "crypto store /h/crypto.db is new", "Restore the store", "new device"}},
		{"the pickle key changed", storeCheck{path: "/h/crypto.db", device: "DEV", stored: "DEV", loadErr: errors.New("bad mac")},
			[]string{"cannot be opened with this pickle key", "MATRIX_PICKLE_KEY", "put the old key back"}},
	}
	for _, c := range cases {
		err := checkCryptoStore(c.check)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v, want no error", c.name, err)
			}
			continue
		}
		if !errors.Is(err, errStoreMismatch) {
			t.Errorf("%s: %v, want errStoreMismatch", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
	}
}

// A crypto store written with one pickle key cannot be read with another:
// the check sees it, rather than the account failing later.
func TestWrongPickleKeyIsDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), storeFile)
	open := func(key string) *crypto.SQLCryptoStore {
		raw, db, err := openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		store := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "@bot:hs", "DEV", []byte(key))
		if err := store.DB.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		return store
	}
	first := open("the first pickle key, long enough")
	if err := first.PutAccount(ctx, crypto.NewOlmAccount()); err != nil {
		t.Fatal(err)
	}
	second := open("another pickle key, long enough!!")
	stored, err := second.FindDeviceID(ctx)
	if err != nil || stored != "DEV" {
		t.Fatalf("FindDeviceID = %q, %v", stored, err)
	}
	_, loadErr := second.GetAccount(ctx)
	err = checkCryptoStore(storeCheck{path: path, device: "DEV", stored: stored, loadErr: loadErr})
	if !errors.Is(err, errStoreMismatch) || !strings.Contains(err.Error(), "pickle key") {
		t.Errorf("checkCryptoStore = %v, want a pickle key mismatch", err)
	}
}

func TestRateLimitIsMapped(t *testing.T) {
	body := &mautrix.RespError{ErrCode: "M_LIMIT_EXCEEDED", ExtraData: map[string]any{"retry_after_ms": float64(2500)}}
	err := mapError(mautrix.HTTPError{Response: &http.Response{StatusCode: 429, Header: http.Header{}}, RespError: body})
	var rl *platform.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 2500*time.Millisecond {
		t.Errorf("mapError = %v, want a RateLimitError of 2.5s", err)
	}
	err = mapError(mautrix.HTTPError{Response: &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"7"}}}})
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("mapError = %v, want a RateLimitError of 7s", err)
	}
	plain := mautrix.HTTPError{Response: &http.Response{StatusCode: 403}, RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN"}}
	if err := mapError(plain); errors.As(err, &rl) {
		t.Errorf("M_FORBIDDEN mapped to a rate limit")
	}
}

func TestMessageContent(t *testing.T) {
	c := messageContent("**bold** and `code`")
	if c.Body != "**bold** and `code`" || c.Format != "org.matrix.custom.html" ||
		!strings.Contains(c.FormattedBody, "<strong>bold</strong>") || !strings.Contains(c.FormattedBody, "<code>code</code>") {
		t.Errorf("content = %+v", c)
	}
	huge := strings.Repeat("ä", maxContentBytes/2)
	if c := messageContent(huge); c.FormattedBody != "" || c.Body != huge {
		t.Errorf("an answer too large for HTML and body together kept its HTML")
	}
	if got := fallbackText(strings.Repeat("é", 150)); len([]rune(got)) != 101 {
		t.Errorf("edit fallback of %d characters", len([]rune(got)))
	}
}

func TestCaps(t *testing.T) {
	a, err := New(Options{Homeserver: "http://hs", AccessToken: "t"}, platform.Deps{Dir: t.TempDir(), State: platformtest.MemState{}})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Caps(chat.Target{})
	if c.MaxLength != 16000 || !c.Edit || !c.Threads || !c.Typing || c.Cursor || c.Format != "html" {
		t.Errorf("caps = %+v", c)
	}
	// Every event the bot sends draws on the account's rc_message budget;
	// replacing a reaction is two events; typing is none.
	want := []platform.Budget{{Classes: platform.Messages | platform.Markers, Account: true, Bucket: MessageBudget}}
	if !reflect.DeepEqual(c.Budgets, want) || c.MarkerCalls != 0 {
		t.Errorf("budgets %+v, marker calls %d; want %+v and none without reactions", c.Budgets, c.MarkerCalls, want)
	}
}

func TestNewChecksOptions(t *testing.T) {
	base := Options{Homeserver: "http://hs", AccessToken: "t"}
	deps := platform.Deps{Dir: t.TempDir(), State: platformtest.MemState{}}
	for name, mutate := range map[string]func(*Options, *platform.Deps){
		"no login":          func(o *Options, _ *platform.Deps) { o.AccessToken = "" },
		"bad mode":          func(o *Options, _ *platform.Deps) { o.E2EE = "sometimes" },
		"bad scope":         func(o *Options, _ *platform.Deps) { o.SessionScope = "galaxy" },
		"bad ignore regexp": func(o *Options, _ *platform.Deps) { o.IgnoreUserPatterns = []string{"("} },
		"no state":          func(_ *Options, d *platform.Deps) { d.State = nil },
	} {
		o, d := base, deps
		mutate(&o, &d)
		if _, err := New(o, d); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// mautrix's logs keep to a few fields: nothing that may carry keys or text.
func TestMautrixLogsAreFiltered(t *testing.T) {
	var b bytes.Buffer
	w := slogWriter{log: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w.Write([]byte(`{"level":"warn","message":"Failed to decrypt event","event_id":"$e","body":"secret text","recovery_key":"EsTc"}`))
	out := b.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "event_id=$e") {
		t.Errorf("log = %q", out)
	}
	if strings.Contains(out, "secret text") || strings.Contains(out, "EsTc") {
		t.Errorf("log kept a field it should drop: %q", out)
	}
}
