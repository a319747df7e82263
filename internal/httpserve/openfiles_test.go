package httpserve

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// The operator is warned when the connection cap, its spare room and the
// process's own files need more than the open-file limit, and told what
// to change; not otherwise.
func TestOpenFilesWarning(t *testing.T) {
	for _, c := range []struct {
		maxConnections int
		limit          uint64
		warn           bool
	}{
		{1024, 1024, true}, // Herald's default cap under a common soft limit
		{1024, 1024 + 256 + ownFiles - 1, true},
		{1024, 1024 + 256 + ownFiles, false},
		{1024, 1 << 20, false},
		{0, 16, false}, // no cap: nothing to compare
	} {
		var logs strings.Builder
		warnOpenFiles(slog.New(slog.NewTextHandler(&logs, nil)), c.maxConnections, c.limit)
		got := logs.String()
		if !c.warn {
			if got != "" {
				t.Errorf("cap %d, limit %d: %s, want no warning", c.maxConnections, c.limit, got)
			}
			continue
		}
		for _, want := range []string{"open-file limit", "ulimit -n", "LimitNOFILE=",
			`cap="http.max_connections (HERALD_HTTP_MAX_CONNECTIONS)"`, "max_connections=1024",
			"files_needed=1344", "open_file_limit=" + strconv.FormatUint(c.limit, 10)} {
			if !strings.Contains(got, want) {
				t.Errorf("cap %d, limit %d: %s, want it to say %q", c.maxConnections, c.limit, got, want)
			}
		}
	}
}
