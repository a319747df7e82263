// Package homelock keeps one Herald process per state directory: two
// processes on one HERALD_HOME would both poll the same bots and each
// resume the other's turns as if it had crashed.
//
// The lock is an advisory lock on a file in the directory, held by the open
// file: the kernel drops it when the process ends, however it ends, so a
// kill -9 never leaves a stale lock behind.
package homelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file's name in the state directory.
const FileName = "herald.lock"

// Lock is a held lock on a state directory.
type Lock struct {
	f *os.File
}

// errLocked is what lock returns when another process holds the lock.
var errLocked = errors.New("locked")

// Acquire takes the lock on dir, which must exist, and writes this
// process's id into the lock file. Another process holding it is an error
// that names that process's id.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking HERALD_HOME %s: %w", dir, err)
	}
	if err := lock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("HERALD_HOME %s is in use by another Herald (%s); stop it first, or give this one another HERALD_HOME", dir, holder(f))
		}
		return nil, fmt.Errorf("locking HERALD_HOME %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Holder tells whether another process holds the lock on dir, and which:
// for herald doctor, which must not keep the lock from a starting gateway
// (it takes it for an instant only when no one holds it). A dir without
// a lock file is not held.
func Holder(dir string) (who string, held bool, err error) {
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer f.Close() // closing lets go of the lock lock may have taken
	switch err := lock(f); {
	case errors.Is(err, errLocked):
		return holder(f), true, nil
	case err != nil:
		return "", false, err
	}
	return "", false, nil
}

// holder says who holds the lock, from the id the holder wrote.
func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return "PID " + strconv.Itoa(pid)
	}
	return "its PID not yet written"
}

// Release lets the lock go; the file stays, for the next holder.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
