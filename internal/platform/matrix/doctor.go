package matrix

import (
	"context"
	"errors"
	"fmt"
	"os"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/platform"
)

// Diagnose implements platform.Diagnoser: the login (whoami with
// MATRIX_ACCESS_TOKEN or the kept session), the device, whether the crypto
// store holds that device's keys, and the account's cross-signing. It
// logs nothing in: a password login would make a device.
func (a *Adapter) Diagnose(ctx context.Context) []platform.Finding {
	cli, err := mautrix.NewClient(a.opts.Homeserver, "", "")
	if err != nil {
		return []platform.Finding{{Status: platform.Fail, Check: "matrix: homeserver", Detail: err.Error(), Fix: "correct MATRIX_HOMESERVER"}}
	}
	cli.Client = a.http
	cli.AccessToken = a.opts.AccessToken
	if cli.AccessToken == "" {
		kept, err := readSession(ctx, a.keep())
		switch {
		case err != nil:
			return []platform.Finding{{Status: platform.Fail, Check: "matrix: session", Detail: "cannot be read: " + err.Error(),
				Fix: "check that the user running Herald can read " + a.keep().where(sessionFile)}}
		case kept == nil || kept.Homeserver != a.opts.Homeserver || kept.UserID != a.opts.UserID:
			return []platform.Finding{{Status: platform.OK, Check: "matrix: login",
				Detail: "no session kept yet: herald run logs in as " + a.opts.UserID + " with MATRIX_PASSWORD and keeps its device"}}
		}
		cli.AccessToken = kept.AccessToken
	}
	who, err := cli.Whoami(ctx)
	switch {
	case errors.Is(err, mautrix.MUnknownToken) && a.opts.AccessToken != "":
		return []platform.Finding{{Status: platform.Fail, Check: "matrix: login", Detail: "the homeserver does not accept MATRIX_ACCESS_TOKEN (M_UNKNOWN_TOKEN)",
			Fix: "log the bot in again and set the new token, or use MATRIX_USER_ID and MATRIX_PASSWORD"}}
	case errors.Is(err, mautrix.MUnknownToken):
		return []platform.Finding{{Status: platform.Warn, Check: "matrix: login", Detail: "the kept session was logged out",
			Fix: "nothing, if MATRIX_PASSWORD is right: herald run logs in again as the same device"}}
	case err != nil:
		return []platform.Finding{{Status: platform.Fail, Check: "matrix: homeserver", Detail: "cannot be reached: " + err.Error(),
			Fix: "check MATRIX_HOMESERVER (" + a.opts.Homeserver + ") and the network"}}
	case a.opts.UserID != "" && string(who.UserID) != a.opts.UserID:
		return []platform.Finding{{Status: platform.Fail, Check: "matrix: login", Detail: fmt.Sprintf("the token belongs to %s, not to MATRIX_USER_ID %s", who.UserID, a.opts.UserID),
			Fix: "use a token of " + a.opts.UserID + ", or correct MATRIX_USER_ID"}}
	}
	device := who.DeviceID
	if device == "" {
		device = id.DeviceID(a.opts.DeviceID)
	}
	findings := []platform.Finding{{Status: platform.OK, Check: "matrix: login", Detail: fmt.Sprintf("accepted: %s, device %s", who.UserID, device)}}
	switch _, err := cli.GetDeviceInfo(ctx, device); {
	case errors.Is(err, mautrix.MNotFound):
		return append(findings, platform.Finding{Status: platform.Fail, Check: "matrix: device", Detail: fmt.Sprintf("device %s is not on the homeserver any more", device),
			Fix: "log the bot in again: a new MATRIX_ACCESS_TOKEN, or MATRIX_PASSWORD with the session kept in HERALD_HOME removed"})
	case err != nil:
		findings = append(findings, platform.Finding{Status: platform.Warn, Check: "matrix: device", Detail: "cannot be read: " + err.Error(),
			Fix: "run herald doctor again"})
	default:
		findings = append(findings, platform.Finding{Status: platform.OK, Check: "matrix: device", Detail: fmt.Sprintf("%s exists", device)})
	}
	if a.opts.E2EE == E2EEOff {
		return append(findings, platform.Finding{Status: platform.OK, Check: "matrix: encryption", Detail: "off (MATRIX_E2EE_MODE=off): encrypted rooms are not answered"})
	}
	return append(findings, a.diagnoseCryptoStore(ctx, who.UserID, device), diagnoseCrossSigning(ctx, cli, who.UserID, device))
}

// diagnoseCryptoStore checks that the crypto store holds the keys of the
// device logged in, if any: encryption cannot start on another's.
func (a *Adapter) diagnoseCryptoStore(ctx context.Context, user id.UserID, device id.DeviceID) platform.Finding {
	f := platform.Finding{Status: platform.OK, Check: "matrix: crypto store"}
	if a.deps.Database == "" {
		if _, err := os.Stat(a.pathIn(storeFile)); errors.Is(err, os.ErrNotExist) {
			f.Detail = "not made yet: the first start makes the keys of device " + string(device)
			return f
		}
	}
	raw, db, where, err := a.openCryptoStore()
	if err != nil {
		f.Status, f.Detail, f.Fix = platform.Fail, err.Error(), "check that the user running Herald can read and write it"
		return f
	}
	defer raw.Close()
	switch stored := storedDevice(ctx, db, string(user)); stored {
	case "":
		f.Detail = fmt.Sprintf("%s holds no keys of %s yet: the next start makes those of device %s", where, user, device)
	case device:
		f.Detail = fmt.Sprintf("%s holds the keys of device %s", where, device)
	default:
		f.Status = platform.Fail
		f.Detail = fmt.Sprintf("%s holds the keys of device %s, but the login is device %s: encryption cannot start", where, stored, device)
		f.Fix = fmt.Sprintf("log in as device %s (MATRIX_DEVICE_ID with MATRIX_PASSWORD, or a token of that device), or move the crypto store away to give device %s new keys", stored, device)
	}
	return f
}

// diagnoseCrossSigning says whether the account has cross-signing and the
// device is signed by it: other users see an unsigned device as
// unverified.
func diagnoseCrossSigning(ctx context.Context, cli *mautrix.Client, user id.UserID, device id.DeviceID) platform.Finding {
	f := platform.Finding{Status: platform.OK, Check: "matrix: cross-signing"}
	keys, err := cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: map[id.UserID]mautrix.DeviceIDList{user: {device}}})
	if err != nil {
		f.Status, f.Detail, f.Fix = platform.Warn, "cannot be read: "+err.Error(), "run herald doctor again"
		return f
	}
	if _, ok := keys.MasterKeys[user]; !ok {
		f.Status, f.Detail = platform.Warn, "not set up: other users see the bot's device as unverified"
		f.Fix = "set MATRIX_RECOVERY_KEY_OUTPUT_FILE: herald run then sets it up and writes the recovery key there"
		return f
	}
	signatures := keys.DeviceKeys[user][device].Signatures[user]
	for keyID := range keys.SelfSigningKeys[user].Keys {
		if _, signed := signatures[keyID]; signed {
			f.Detail = fmt.Sprintf("set up; device %s is signed", device)
			return f
		}
	}
	f.Status, f.Detail = platform.Warn, fmt.Sprintf("set up, but device %s is not signed: other users see it as unverified", device)
	f.Fix = "set MATRIX_RECOVERY_KEY to the account's recovery key: herald run signs the device with it"
	return f
}
