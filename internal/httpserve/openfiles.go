package httpserve

import "log/slog"

// ownFiles is how many file descriptors the process keeps for itself
// beside the listener's connections (our choice): its database, log and
// executable, and its connections to the agent server and the chat
// platforms, a few dozen at most.
const ownFiles = 64

// warnOpenFiles tells the operator when the open-file limit (the soft
// RLIMIT_NOFILE) is below what maxConnections may take: its regular and
// spare places and ownFiles. Past the limit, accepting fails ("too many
// open files") and every client waits, within the caps or not. Without a
// cap there is nothing to compare.
func warnOpenFiles(log *slog.Logger, maxConnections int, limit uint64) {
	if maxConnections <= 0 {
		return
	}
	need := uint64(maxConnections + quarter(maxConnections) + ownFiles)
	if need <= limit {
		return
	}
	log.Warn("the open-file limit is below what the HTTP connection cap may need",
		"cap", "http.max_connections (HERALD_HTTP_MAX_CONNECTIONS)", "max_connections", maxConnections,
		"files_needed", need, "open_file_limit", limit,
		"fix", "raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or lower the cap")
}
