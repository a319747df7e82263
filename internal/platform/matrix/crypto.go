package matrix

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/id"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, as "sqlite"
)

// Files in the adapter's directory.
const (
	storeFile     = "crypto.db"  // crypto store and room state
	pickleKeyFile = "pickle.key" // the generated pickle key
)

// openStore opens the adapter's SQLite database with the pure-Go driver.
// mautrix's own path form needs the cgo driver; its queries are written
// for the "sqlite3" dialect, which modernc's SQLite understands.
func openStore(path string) (*sql.DB, *dbutil.Database, error) {
	// Created private: it holds the bot's keys (SQLite gives its -wal and
	// -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the Matrix store %s: %w", path, err)
	}
	f.Close()
	dsn := (&url.URL{Scheme: "file", Path: path}).String() + "?" + strings.Join([]string{
		"_txlock=immediate",
		"_pragma=busy_timeout(10000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
	}, "&")
	raw, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the Matrix store %s: %w", path, err)
	}
	raw.SetMaxOpenConns(4)
	raw.SetMaxIdleConns(4)
	if err := raw.Ping(); err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("opening the Matrix store %s: %w", path, err)
	}
	db, err := dbutil.NewWithDB(raw, "sqlite3")
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	return raw, db, nil
}

// loadPickleKey returns the key that protects the crypto store: the
// configured one, else the kept one, generated on first use and kept where
// only the owner can read it. It is never derived from the access token,
// which changes with every login.
func loadPickleKey(ctx context.Context, k keeper, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	data, err := k.read(ctx, pickleKeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the pickle key: %w", err)
	}
	if data != nil {
		key := strings.TrimSpace(string(data))
		if len(key) < 32 {
			return nil, permanent(fmt.Errorf("the pickle key in %s is too short: restore it, or set MATRIX_PICKLE_KEY", k.where(pickleKeyFile)))
		}
		return []byte(key), nil
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails, see crypto/rand.Read
	key := hex.EncodeToString(raw)
	if err := k.write(ctx, pickleKeyFile, []byte(key+"\n")); err != nil {
		return nil, fmt.Errorf("keeping the pickle key: %w", err)
	}
	return []byte(key), nil
}

// storeCheck is what checkCryptoStore compares.
type storeCheck struct {
	path    string      // the store's file, for the message
	device  id.DeviceID // the device logged in
	stored  id.DeviceID // the device the store belongs to ("" for a new store)
	loadErr error       // opening the store's account with the pickle key
	// serverHasKeys tells whether the homeserver holds keys for device.
	serverHasKeys func() (bool, error)
}

// errStoreMismatch marks a crypto store that does not fit the device.
var errStoreMismatch = errors.New("the Matrix crypto store does not match the device")

// checkCryptoStore detects a crypto store that no longer matches the
// device, and says what to do, rather than letting every message fail to
// decrypt.
func checkCryptoStore(c storeCheck) error {
	switch {
	case c.stored != "" && c.stored != c.device:
		return fmt.Errorf("%w: the crypto store %s belongs to device %s, but the bot is logged in as device %s. "+
			"To keep using device %s and its keys, set MATRIX_DEVICE_ID=%s (and an access token of that device, if you use one). "+
			"To make %s the bot's device instead, move %s away and start again: messages encrypted for the old device stay unreadable to the new one",
			errStoreMismatch, c.path, c.stored, c.device, c.stored, c.stored, c.device, c.path)
	case c.loadErr != nil:
		return fmt.Errorf("%w: the crypto store %s cannot be opened with this pickle key (%v). "+
			"If MATRIX_PICKLE_KEY changed, or %s was replaced, put the old key back. "+
			"Otherwise move the store away and log the bot in as a new device (a new access token, or delete %s for a password login)",
			errStoreMismatch, c.path, c.loadErr, pickleKeyFile, sessionFile)
	case c.stored == "" && c.serverHasKeys != nil:
		has, err := c.serverHasKeys()
		if err != nil {
			return fmt.Errorf("asking the homeserver for device %s's keys: %w", c.device, err)
		}
		if has {
			return fmt.Errorf("%w: device %s already has encryption keys on the homeserver, but the crypto store %s is new (deleted, moved, or another client's device). "+
				"Restore the store if you have it. Otherwise log the bot in as a new device: with MATRIX_PASSWORD, delete %s and unset MATRIX_DEVICE_ID; "+
				"with MATRIX_ACCESS_TOKEN, create a new login for the bot and use its token",
				errStoreMismatch, c.device, c.path, sessionFile)
		}
	}
	return nil
}

// startCrypto opens the crypto store, checks it against the device, and
// starts mautrix's crypto helper on the client's syncer. The state store
// must already be set on the client.
func (a *Adapter) startCrypto(ctx context.Context, cli *mautrix.Client, db *dbutil.Database, path string) (*cryptohelper.CryptoHelper, error) {
	pickleKey, err := loadPickleKey(ctx, a.keep(), a.opts.PickleKey)
	if err != nil {
		return nil, a.storeErr(err)
	}
	store := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, string(cli.UserID), cli.DeviceID, pickleKey)
	if err := store.DB.Upgrade(ctx); err != nil {
		return nil, a.storeErr(fmt.Errorf("preparing the crypto store %s: %w", path, err))
	}
	stored, err := store.FindDeviceID(ctx)
	if err != nil {
		return nil, a.storeErr(fmt.Errorf("reading the crypto store %s: %w", path, err))
	}
	check := storeCheck{path: path, device: cli.DeviceID, stored: stored}
	if stored != "" {
		_, check.loadErr = store.GetAccount(ctx)
	} else {
		check.serverHasKeys = func() (bool, error) {
			resp, err := cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{
				DeviceKeys: map[id.UserID]mautrix.DeviceIDList{cli.UserID: {cli.DeviceID}},
			})
			if err != nil {
				return false, err
			}
			keys, ok := resp.DeviceKeys[cli.UserID][cli.DeviceID]
			return ok && len(keys.Keys) > 0, nil
		}
	}
	if err := checkCryptoStore(check); err != nil {
		if errors.Is(err, errStoreMismatch) {
			return nil, permanent(err)
		}
		return nil, err
	}

	helper, err := cryptohelper.NewCryptoHelper(cli, pickleKey, store)
	if err != nil {
		return nil, permanent(fmt.Errorf("starting encryption: %w", err))
	}
	helper.DecryptErrorCallback = a.onUndecryptable
	if err := helper.Init(ctx); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "mismatching identity key"), strings.Contains(msg, "keys seem to have disappeared"),
			strings.Contains(msg, "not marked as shared, but there are keys"):
			return nil, permanent(fmt.Errorf("%w: the keys of device %s on the homeserver differ from those in the crypto store %s (%v). "+
				"Another client may use this device id, or the store is from an older device of the same id: log the bot in as a device of its own "+
				"(a new access token, or delete %s and unset MATRIX_DEVICE_ID for a password login) and move the store away",
				errStoreMismatch, cli.DeviceID, path, err, sessionFile))
		case isPermanent(err):
			return nil, permanent(fmt.Errorf("starting encryption: %w", err))
		}
		return nil, fmt.Errorf("starting encryption: %w", err)
	}
	cli.Crypto = helper
	return helper, nil
}

// crossSign fetches the cross-signing keys from secret storage with the
// recovery key and signs this device with the self-signing key, so that
// other users' clients (Element) show the bot as verified. It is done at
// every start: signing again is harmless. The outcome is logged; the key
// never is.
func (a *Adapter) crossSign(ctx context.Context, helper *cryptohelper.CryptoHelper) {
	mach := helper.Machine()
	if err := mach.VerifyWithRecoveryKey(ctx, a.opts.RecoveryKey); err != nil {
		a.log.Error("cross-signing this device with MATRIX_RECOVERY_KEY failed; other users may see the bot as unverified",
			"device", mach.Client.DeviceID, "error", redact(err.Error(), a.opts.RecoveryKey))
		return
	}
	a.log.Info("cross-signing: this device is signed with the account's self-signing key", "device", mach.Client.DeviceID)
}

// setUpCrossSigning gives an account that has no cross-signing yet its
// keys and secret storage, as Element's "set up secure backup" does, and
// signs this device, so that other users see the bot as verified. The
// recovery key is written to MATRIX_RECOVERY_KEY_OUTPUT_FILE (created, mode
// 0600, never over an existing file) before anything is uploaded, so that
// no key the account depends on is ever lost; it is never logged.
func (a *Adapter) setUpCrossSigning(ctx context.Context, helper *cryptohelper.CryptoHelper) {
	mach := helper.Machine()
	path := a.opts.RecoveryKeyFile
	if _, err := os.Stat(path); err == nil {
		a.log.Info("MATRIX_RECOVERY_KEY_OUTPUT_FILE exists; no recovery key is made (set MATRIX_RECOVERY_KEY to sign this device)", "file", path)
		return
	}
	if keys, err := mach.GetOwnCrossSigningPublicKeys(ctx); err != nil || keys != nil {
		a.log.Warn("the account has cross-signing already, or it could not be read: no recovery key is made (set MATRIX_RECOVERY_KEY to sign this device)", "error", err)
		return
	}
	if err := a.writeCrossSigning(ctx, mach, path); err != nil {
		a.log.Error("setting up cross-signing failed; other users may see the bot as unverified", "file", path, "error", err)
		return
	}
	a.log.Warn("cross-signing is set up: its recovery key was written to MATRIX_RECOVERY_KEY_OUTPUT_FILE (mode 0600); keep it somewhere safe and set MATRIX_RECOVERY_KEY from it",
		"file", path, "device", mach.Client.DeviceID)
}

// writeCrossSigning makes the secret storage key, writes its recovery key
// to path, then makes, stores and publishes the cross-signing keys and
// signs this device with them.
func (a *Adapter) writeCrossSigning(ctx context.Context, mach *crypto.OlmMachine, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	key, err := mach.SSSS.GenerateAndUploadKey(ctx, "")
	if err == nil {
		_, err = f.WriteString(key.RecoveryKey() + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // nothing was uploaded that needs it
		return err
	}
	keys, err := mach.GenerateCrossSigningKeys()
	if err != nil {
		return err
	}
	if err := mach.UploadCrossSigningKeysToSSSS(ctx, key, keys); err != nil {
		return fmt.Errorf("storing the cross-signing keys in secret storage: %w", err)
	}
	var uia mautrix.UIACallback
	if a.opts.Password != "" {
		uia = func(resp *mautrix.RespUserInteractive) any {
			return &mautrix.ReqUIAuthLogin{
				BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: resp.Session},
				User:         mach.Client.UserID.String(), Password: a.opts.Password,
			}
		}
	}
	if err := mach.PublishCrossSigningKeys(ctx, keys, uia); err != nil {
		return fmt.Errorf("publishing the cross-signing keys (a login by access token may need MATRIX_PASSWORD for it): %w", err)
	}
	if err := mach.SSSS.SetDefaultKeyID(ctx, key.ID); err != nil {
		return err
	}
	if err := mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
		return fmt.Errorf("signing this device: %w", err)
	}
	return mach.SignOwnMasterKey(ctx)
}

// redact removes a secret from a text, should a library have echoed it.
func redact(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[redacted]")
}
