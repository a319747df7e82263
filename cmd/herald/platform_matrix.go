package main

import (
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/matrix"
)

func init() { platformConstructors = append(platformConstructors, newMatrix) }

// newMatrix builds the Matrix adapter when MATRIX_HOMESERVER is set.
func newMatrix(cfg *config.Config, state platform.StateStore, log *slog.Logger) (platform.Adapter, error) {
	m := cfg.MatrixSettings
	if !m.Enabled() {
		return nil, nil
	}
	// Invites are accepted from the users the gateway lets talk to the
	// agent on Matrix: the gateway-wide and the Matrix allowlists.
	access := cfg.PlatformAccess["matrix"]
	users := slices.Concat(cfg.Access.Users, access.Users)
	return matrix.New(matrix.Options{
		Homeserver:         m.Homeserver,
		AccessToken:        m.AccessToken,
		UserID:             m.UserID,
		Password:           m.Password,
		DeviceID:           m.DeviceID,
		E2EE:               m.E2EEMode,
		PickleKey:          m.PickleKey,
		RecoveryKey:        m.RecoveryKey,
		AllowedUsers:       users,
		AllowAll:           cfg.Access.AllowAll || access.AllowAll,
		AllowedRooms:       m.AllowedRooms,
		RequireMention:     m.RequireMention,
		FreeResponseRooms:  m.FreeResponseRooms,
		IgnoreUserPatterns: m.IgnoreUserPatterns,
		ProcessNotices:     m.ProcessNotices,
		AutoThread:         m.AutoThread,
		SessionScope:       m.SessionScope,
		Reactions:          m.Reactions,
		HomeRoom:           m.HomeRoom,
		MaxMediaBytes:      m.MaxMediaBytes,
		MaxLength:          m.ChunkSize,
		EditInterval:       m.EditInterval,
		Dir:                filepath.Join(cfg.Home, "matrix"),
		State:              state,
		Logger:             log,
	})
}
