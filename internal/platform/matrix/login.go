package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// sessionFile keeps a password login's device and token, so later starts
// reuse the device (and its keys) instead of creating one each time.
const sessionFile = "session.json"

// session is the content of sessionFile.
type session struct {
	Homeserver  string `json:"homeserver"`
	UserID      string `json:"user_id"`
	DeviceID    string `json:"device_id"`
	AccessToken string `json:"access_token"`
}

// permanentError is a start-up failure that retrying will not cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// isPermanent reports whether a start-up error will not go away by
// itself: the adapter's own verdicts, and the homeserver's refusals (4xx).
func isPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		code := httpErr.Response.StatusCode
		return code >= 400 && code < 500 && code != 429 && code != 408
	}
	return false
}

// login makes cli an authenticated client: with the access token, or with
// the password login's kept session, or with a new password login (as
// the device the crypto store holds, if the session file was lost).
func (a *Adapter) login(ctx context.Context, cli *mautrix.Client, stored id.DeviceID) error {
	if a.opts.AccessToken != "" {
		return a.tokenLogin(ctx, cli)
	}
	return a.passwordLogin(ctx, cli, stored)
}

// storedDevice is the device whose keys the crypto store holds for a user,
// if any.
func storedDevice(ctx context.Context, db *dbutil.Database, userID string) id.DeviceID {
	var device id.DeviceID
	if userID == "" {
		return ""
	}
	// The table does not exist before the first start: no device then.
	_ = db.QueryRow(ctx, "SELECT device_id FROM crypto_account WHERE account_id=$1", userID).Scan(&device)
	return device
}

func (a *Adapter) tokenLogin(ctx context.Context, cli *mautrix.Client) error {
	cli.AccessToken = a.opts.AccessToken
	who, err := cli.Whoami(ctx)
	if errors.Is(err, mautrix.MUnknownToken) {
		return permanent(errors.New("the homeserver does not accept MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN): log the bot in again and set the new token, or use MATRIX_USER_ID and MATRIX_PASSWORD"))
	}
	if err != nil {
		return fmt.Errorf("checking MATRIX_ACCESS_TOKEN with the homeserver: %w", err)
	}
	if a.opts.UserID != "" && string(who.UserID) != a.opts.UserID {
		return permanent(fmt.Errorf("MATRIX_ACCESS_TOKEN belongs to %s, not to MATRIX_USER_ID %s", who.UserID, a.opts.UserID))
	}
	device := who.DeviceID
	switch {
	case device == "" && a.opts.DeviceID == "":
		return permanent(errors.New("the homeserver does not say which device MATRIX_ACCESS_TOKEN belongs to: set MATRIX_DEVICE_ID to it"))
	case device == "":
		device = id.DeviceID(a.opts.DeviceID)
	case a.opts.DeviceID != "" && string(device) != a.opts.DeviceID:
		return permanent(fmt.Errorf("MATRIX_DEVICE_ID is %s but MATRIX_ACCESS_TOKEN belongs to device %s: "+
			"unset MATRIX_DEVICE_ID, or use a token of device %s", a.opts.DeviceID, device, a.opts.DeviceID))
	}
	cli.UserID, cli.DeviceID = who.UserID, device
	return nil
}

func (a *Adapter) passwordLogin(ctx context.Context, cli *mautrix.Client, stored id.DeviceID) error {
	keep := a.keep()
	kept, err := readSession(ctx, keep)
	if err != nil {
		return a.storeErr(err)
	}
	if kept != nil && (kept.Homeserver != a.opts.Homeserver || kept.UserID != a.opts.UserID) {
		kept = nil // another account's
	}
	// The device to be: the one asked for, else the one whose keys the
	// crypto store holds, else the kept session's, else a new one.
	device := id.DeviceID(a.opts.DeviceID)
	if device == "" {
		device = stored
	}
	if device == "" && kept != nil {
		device = id.DeviceID(kept.DeviceID)
	}
	if kept != nil && id.DeviceID(kept.DeviceID) == device {
		cli.AccessToken = kept.AccessToken
		who, err := cli.Whoami(ctx)
		switch {
		case err == nil && string(who.UserID) == kept.UserID && (who.DeviceID == "" || who.DeviceID == device):
			cli.UserID, cli.DeviceID = who.UserID, device
			a.log.Info("logged in with the kept session", "user", cli.UserID, "device", cli.DeviceID)
			return nil
		case err != nil && !errors.Is(err, mautrix.MUnknownToken):
			return fmt.Errorf("checking the kept Matrix session: %w", err)
		}
		// The token is gone (logged out, expired): log in again as the same device.
		cli.AccessToken = ""
	}
	resp, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: a.opts.UserID},
		Password:                 a.opts.Password,
		DeviceID:                 device,
		InitialDeviceDisplayName: a.opts.DeviceName,
		StoreCredentials:         true,
	})
	if err != nil {
		if isPermanent(err) {
			return permanent(fmt.Errorf("logging in as MATRIX_USER_ID %s with MATRIX_PASSWORD: %w", a.opts.UserID, err))
		}
		return fmt.Errorf("logging in as %s: %w", a.opts.UserID, err)
	}
	if err := writeSession(ctx, keep, session{
		Homeserver:  a.opts.Homeserver,
		UserID:      string(resp.UserID),
		DeviceID:    string(resp.DeviceID),
		AccessToken: resp.AccessToken,
	}); err != nil {
		return a.storeErr(err)
	}
	a.log.Info("logged in with the password", "user", resp.UserID, "device", resp.DeviceID)
	return nil
}

// readSession reads the kept session; none is not an error.
func readSession(ctx context.Context, k keeper) (*session, error) {
	data, err := k.read(ctx, sessionFile)
	if err != nil {
		return nil, fmt.Errorf("reading the Matrix session %s: %w", k.where(sessionFile), err)
	}
	if data == nil {
		return nil, nil
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, permanent(fmt.Errorf("the Matrix session %s is damaged (%v): delete it to log in again with MATRIX_PASSWORD", k.where(sessionFile), err))
	}
	return &s, nil
}

// writeSession keeps a session where only the owner can read it.
func writeSession(ctx context.Context, k keeper, s session) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := k.write(ctx, sessionFile, data); err != nil {
		return fmt.Errorf("keeping the Matrix session: %w", err)
	}
	return nil
}

// writePrivate writes a file with mode 0600, atomically.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	return os.Rename(tmp, path)
}
