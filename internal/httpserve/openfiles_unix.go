//go:build unix

package httpserve

import "syscall"

// openFileLimit returns the process's soft limit on open files, as it is
// now: Go raised it to the hard limit at start.
func openFileLimit() (limit uint64, known bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
