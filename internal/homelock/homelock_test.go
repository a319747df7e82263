package homelock

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestSecondHolderIsRefusedWithTheFirstOnesPID(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	want := "HERALD_HOME " + dir + " is in use by another Herald (PID " + strconv.Itoa(os.Getpid()) + "); stop it first"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second Acquire: %v, want %q", err, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// holdEnv makes the test binary a process that holds the lock on the
// directory it names until it is killed.
const holdEnv = "HOMELOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		if _, err := Acquire(dir); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		select {}
	}
	os.Exit(m.Run())
}

// A process killed with SIGKILL leaves no stale lock: the kernel drops it.
func TestKilledHolderLeavesNoLock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL is a Unix signal")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("the holder said %q", line)
	}
	_, err = Acquire(dir)
	if want := "(PID " + strconv.Itoa(cmd.Process.Pid) + ")"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Acquire while another process holds it: %v, want it to name %s", err, want)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}

// Holder names the holder without taking the lock from anyone: before a
// lock file exists, while it is held, and after it is let go.
func TestHolder(t *testing.T) {
	dir := t.TempDir()
	if who, held, err := Holder(dir); err != nil || held {
		t.Fatalf("Holder with no lock file: %q %v %v", who, held, err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	who, held, err := Holder(dir)
	if err != nil || !held || who != "PID "+strconv.Itoa(os.Getpid()) {
		t.Fatalf("Holder while held: %q %v %v", who, held, err)
	}
	l.Release()
	if who, held, err := Holder(dir); err != nil || held {
		t.Fatalf("Holder after Release: %q %v %v", who, held, err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Holder: %v", err)
	}
	l2.Release()
}
