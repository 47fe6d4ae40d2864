package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// LockFileName is the project lock file, in the project directory.
const LockFileName = ".autobackup.lock"

// ErrLocked matches (errors.Is) the *LockedError returned when another
// process holds the project lock.
var ErrLocked = errors.New("project is locked by another autobackup")

// lockPoll is how often Acquire retries while waiting.
const lockPoll = 100 * time.Millisecond

// Holder describes the process holding a project lock, as it wrote itself
// into the lock file.
type Holder struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Command string    `json:"command"`
}

// LockedError is returned by Acquire when the lock stayed busy. Holder is
// zero when the holder's information could not be read.
type LockedError struct {
	Holder Holder
	Waited time.Duration // how long Acquire waited; 0 when it tried once
}

func (e *LockedError) Error() string {
	who := "another autobackup"
	if e.Holder.PID > 0 {
		who += fmt.Sprintf(" (pid %d", e.Holder.PID)
		if e.Holder.Command != "" {
			who += fmt.Sprintf(", %q", e.Holder.Command)
		}
		if !e.Holder.Started.IsZero() {
			who += ", started " + e.Holder.Started.UTC().Format(time.RFC3339)
		}
		who += ")"
	}
	if e.Waited > 0 {
		return fmt.Sprintf("%s still holds the lock on this project after %s; wait for it or use a longer --lock-timeout", who, Duration(e.Waited))
	}
	return who + " holds the lock on this project; wait for it or use --lock-timeout 5m"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held project lock.
type Lock struct {
	fl   *flock.Flock
	info *os.File // a second descriptor for the holder information; flock has no accessor for its own
	once sync.Once
	err  error
}

// Acquire takes the lock of the project in dir (the file .autobackup.lock,
// mode 0600, created when missing) and records this process as the holder.
// With timeout 0 it tries once; otherwise it retries until timeout passes
// or ctx is done. A busy lock is a *LockedError (errors.Is ErrLocked). A
// lock whose holder died is free: the kernel released it with the process.
func Acquire(ctx context.Context, dir string, timeout time.Duration, command string) (*Lock, error) {
	path := filepath.Join(dir, LockFileName)
	fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok && !lockedCurrent(fl, path) {
			// The file was removed (Discard) while we waited for it: the
			// lock that counts is on whatever the name is now.
			_ = fl.Unlock()
			fl = flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
			continue
		}
		if ok {
			break
		}
		remaining := time.Until(deadline)
		if timeout <= 0 || remaining <= 0 {
			waited := time.Duration(0)
			if timeout > 0 {
				waited = timeout
			}
			return nil, &LockedError{Holder: readHolder(path), Waited: waited}
		}
		t := time.NewTimer(min(lockPoll, remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
	l := &Lock{fl: fl}
	info, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		_ = l.Release()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l.info = info
	if err := writeHolder(info, Holder{PID: os.Getpid(), Started: time.Now().UTC().Truncate(time.Second), Command: command}); err != nil {
		_ = l.Release()
		return nil, fmt.Errorf("lock %s: write holder: %w", path, err)
	}
	return l, nil
}

// lockedCurrent reports whether the file fl locked is still the one named
// path.
func lockedCurrent(fl *flock.Flock, path string) bool {
	held, err := fl.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(held, now)
}

// Discard removes the lock file and releases the lock, for a run that
// did nothing and should leave no file behind. Safe against waiters:
// one that then gets the removed file's lock sees it is no longer the
// file of that name and locks the new one (see Acquire).
func (l *Lock) Discard() error {
	err := os.Remove(l.fl.Path())
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("remove lock file: %w", err)
	}
	return errors.Join(err, l.Release())
}

// Release clears the holder information and unlocks. The lock file stays:
// removing it would let two processes lock different files of one name.
// Calling Release again does nothing and returns the first result.
func (l *Lock) Release() error {
	l.once.Do(func() {
		var errs []error
		if l.info != nil {
			errs = append(errs, l.info.Truncate(0))
		}
		// Unlock before closing the second descriptor: with fcntl locks
		// (some platforms) closing any descriptor drops the lock.
		errs = append(errs, l.fl.Unlock())
		if l.info != nil {
			errs = append(errs, l.info.Close())
		}
		if err := errors.Join(errs...); err != nil {
			l.err = fmt.Errorf("release lock %s: %w", l.fl.Path(), err)
		}
	})
	return l.err
}

func writeHolder(fh *os.File, h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := fh.Truncate(0); err != nil {
		return err
	}
	_, err = fh.WriteAt(data, 0)
	return err
}

// readHolder reads the holder information, best effort: it may be missing
// while the holder is between locking and writing it.
func readHolder(path string) Holder {
	var h Holder
	data, err := os.ReadFile(path)
	if err != nil {
		return Holder{}
	}
	if json.Unmarshal(data, &h) != nil {
		return Holder{}
	}
	return h
}

// String formats h for logs: pid 1234 "run" since 2026-11-25T23:10:00Z.
func (h Holder) String() string {
	return "pid " + strconv.Itoa(h.PID) + " " + strconv.Quote(h.Command) + " since " + h.Started.UTC().Format(time.RFC3339)
}
