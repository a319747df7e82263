//go:build !unix

package httpserve

// openFileLimit says the open-file limit is unknown where there is no
// RLIMIT_NOFILE to read, so Serve does not warn about it.
func openFileLimit() (limit uint64, known bool) { return 0, false }
