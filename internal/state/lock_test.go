package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()

	fi, err := os.Stat(filepath.Join(dir, LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("lock file mode = %v, want %v", got, want)
	}

	_, err = Acquire(t.Context(), dir, 0, "backup")
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Acquire = %v, want a *LockedError", err)
	}
	if !errors.Is(err, ErrLocked) {
		t.Error("errors.Is(err, ErrLocked) = false")
	}
	if got, want := le.Holder.PID, os.Getpid(); got != want {
		t.Errorf("holder pid = %d, want %d", got, want)
	}
	if got, want := le.Holder.Command, "run"; got != want {
		t.Errorf("holder command = %q, want %q", got, want)
	}
	if age := time.Since(le.Holder.Started); age < -time.Second || age > time.Minute {
		t.Errorf("holder started = %v, want about now", le.Holder.Started)
	}
	want := fmt.Sprintf(`another autobackup (pid %d, "run", started %s) holds the lock on this project; wait for it or use --lock-timeout 5m`,
		os.Getpid(), le.Holder.Started.Format(time.RFC3339))
	if got := err.Error(); got != want {
		t.Errorf("error = %q\nwant    %q", got, want)
	}
}

func TestLockTimeout(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()

	start := time.Now()
	_, err = Acquire(t.Context(), dir, 300*time.Millisecond, "backup")
	waited := time.Since(start)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Acquire = %v, want a *LockedError", err)
	}
	if waited < 300*time.Millisecond {
		t.Errorf("gave up after %v, want at least the timeout", waited)
	}
	if got, want := le.Waited, 300*time.Millisecond; got != want {
		t.Errorf("Waited = %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "still holds the lock on this project after 300ms") {
		t.Errorf("error = %q", err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		l.Release()
	}()
	l2, err := Acquire(t.Context(), dir, 10*time.Second, "backup")
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestLockContextCancel(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	_, err = Acquire(ctx, dir, time.Minute, "backup")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire with a done context = %v, want context.DeadlineExceeded", err)
	}
}

func TestLockReleaseIdempotent(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := l.Release(); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 0 {
		t.Errorf("lock file after release holds %q, want nothing", data)
	}
	l2, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	l2.Release()
}

const lockHelperEnv = "STATE_TEST_LOCK_HELPER_DIR"

// TestLockHelperProcess is not a test: TestLockStaleTakeover runs the test
// binary with lockHelperEnv set to take the lock in another process.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestLockStaleTakeover")
	}
	if _, err := Acquire(context.Background(), dir, 0, "helper"); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestLockStaleTakeover(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(out)
	locked := false
	for sc.Scan() {
		if sc.Text() == "locked" {
			locked = true
			break
		}
		t.Logf("helper: %s", sc.Text())
	}
	if !locked {
		t.Fatal("helper process did not take the lock")
	}

	_, err = Acquire(t.Context(), dir, 0, "run")
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Acquire while the helper holds the lock = %v, want a *LockedError", err)
	}
	if got, want := le.Holder.PID, cmd.Process.Pid; got != want {
		t.Errorf("holder pid = %d, want the helper's %d", got, want)
	}
	if got, want := le.Holder.Command, "helper"; got != want {
		t.Errorf("holder command = %q, want %q", got, want)
	}

	// SIGKILL: no chance to release; the kernel drops the flock, the
	// holder information stays behind in the file.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	defer l.Release()
	if got, want := readHolder(filepath.Join(dir, LockFileName)).PID, os.Getpid(); got != want {
		t.Errorf("holder after takeover = pid %d, want %d", got, want)
	}
}

// A discarded lock leaves no file, and a run waiting for it ends up
// holding the lock of the file that name now has, so that a third run
// cannot take it at the same time.
func TestLockDiscard(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(t.Context(), dir, 0, "run")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock, 1)
	go func() {
		l2, err := Acquire(t.Context(), dir, 10*time.Second, "daemon")
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	time.Sleep(300 * time.Millisecond) // the second run waits on the file
	if err := l.Discard(); err != nil {
		t.Fatal(err)
	}
	l2 := <-got
	if l2 == nil {
		t.FailNow()
	}
	defer l2.Release()
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); err != nil {
		t.Fatalf("lock file of the waiting run: %v", err)
	}
	var locked *LockedError
	if l3, err := Acquire(t.Context(), dir, 0, "run"); !errors.As(err, &locked) {
		if l3 != nil {
			l3.Release()
		}
		t.Fatalf("third run while the second holds the lock: %v, want LockedError", err)
	}

	// Alone, Discard removes the file.
	if err := l2.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Discard: %v, want none", err)
	}
}
