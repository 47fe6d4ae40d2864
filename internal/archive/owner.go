package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// A partial backup directory is owned by the process writing it. The owner
// holds an exclusive flock(2) on <dir>/.partial-<id>.owner for as long as
// the backup is pending, and records itself in that file. The kernel drops
// the lock when the process dies, however it dies, so a cleaner that can
// take the lock knows nobody is writing the backup any more. Where the file
// system does not support flock (some FUSE and SMB mounts) the recorded PID
// and process start time stand in for it on the same host; a partial backup
// of another host, or one whose owner cannot be told, is only removed once
// it is older than LeftoverAge.

// ownerSuffix follows the partial directory's name in its owner file.
const ownerSuffix = ".owner"

// LeftoverAge is how long a partial backup whose owner cannot be checked
// (written by another host, or by a version without owner files) must have
// been left untouched before it is removed.
const LeftoverAge = 24 * time.Hour

// tempAge is how old a stray temporary file must be before it is removed:
// every temporary file we write is renamed within seconds.
const tempAge = time.Hour

// Owner is recorded in a partial backup's owner file.
type Owner struct {
	Project string    `json:"project"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Boot    uint64    `json:"proc_start,omitempty"` // the process's start time in clock ticks since boot (Linux), against PID reuse
	Started time.Time `json:"started"`
}

// Hostname names this host in manifests and owner files. An error gives
// "unknown", which never matches another host by accident.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

func ownerPath(partial string) string { return partial + ownerSuffix }

// claim creates and locks the owner file of the partial directory path.
// The lock is taken before the directory exists, so a cleaner never sees a
// fresh partial directory without its owner.
func claim(path, project string) (*flock.Flock, error) {
	op := ownerPath(path)
	fl := flock.New(op, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		// No flock on this file system: the PID and start time recorded
		// below are what protects the backup.
		fl = nil
	} else if !ok {
		return nil, fmt.Errorf("%s is locked by another process", op)
	}
	o := Owner{Project: project, Host: Hostname(), PID: os.Getpid(), Boot: procStart(os.Getpid()), Started: time.Now().UTC().Truncate(time.Second)}
	data, _ := json.Marshal(o)
	// Not atomicfile: a rename would put a new, unlocked inode under the name.
	if err := os.WriteFile(op, append(data, '\n'), 0o600); err != nil {
		if fl != nil {
			_ = fl.Unlock()
		}
		_ = os.Remove(op)
		return nil, fmt.Errorf("record owner of %s: %w", path, err)
	}
	return fl, nil
}

// release removes the owner file and drops its lock.
func release(path string, fl *flock.Flock) {
	_ = os.Remove(ownerPath(path))
	if fl != nil {
		_ = fl.Unlock()
	}
}

// ownerState is what a cleaner can tell about a partial backup's owner.
type ownerState int

const (
	ownerUnknown ownerState = iota // no owner file, another host, or unreadable: decide by age
	ownerLive                      // a process holds the lock or is alive with the recorded PID
	ownerGone                      // the owner is certainly gone; the caller holds the lock (if any)
)

// probeOwner checks the owner of partial directory path. When it returns
// ownerGone with a non-nil lock, the caller holds the owner lock and must
// release it.
func probeOwner(path string) (ownerState, *flock.Flock) {
	op := ownerPath(path)
	data, err := os.ReadFile(op)
	if err != nil {
		return ownerUnknown, nil
	}
	var o Owner
	if json.Unmarshal(data, &o) != nil {
		o = Owner{}
	}
	fl := flock.New(op, flock.SetFlag(os.O_RDWR))
	ok, lockErr := fl.TryLock()
	switch {
	case lockErr == nil && !ok:
		return ownerLive, nil
	case o.Host == "" || o.Host != Hostname():
		// Locks on network file systems are not always seen across
		// hosts: a free lock proves nothing about another host's run.
		if lockErr == nil {
			_ = fl.Unlock()
		}
		return ownerUnknown, nil
	case lockErr == nil:
		return ownerGone, fl
	case o.PID > 0 && alive(o.PID, o.Boot):
		return ownerLive, nil
	case o.PID > 0:
		return ownerGone, nil
	}
	return ownerUnknown, nil
}

// alive reports whether pid runs and, when boot is known, is the same
// process (not a reused PID).
func alive(pid int, boot uint64) bool {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		if _, err := os.Stat("/proc/self"); err != nil {
			return true // no procfs: cannot tell, assume it lives
		}
		return false
	}
	return boot == 0 || procStart(pid) == boot
}

// procStart returns field 22 of /proc/<pid>/stat, the process's start time
// in clock ticks since boot, or 0 where there is no such file.
func procStart(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(fields[19], 10, 64)
	return v
}

// CleanPartials removes what interrupted runs left in dir: partial backup
// directories no live process owns, and temporary files of our atomic
// writes older than an hour, at the top level and inside complete backups.
// A partial directory is removed at once when its owner is certainly gone
// (see the comment on owner files) and only after LeftoverAge untouched
// when its owner cannot be told. A partial backup being written — by any
// project, on any host — is never removed. It returns the removed paths. A
// missing dir is not an error.
func CleanPartials(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean partial backups: %w", err)
	}
	now := time.Now()
	var removed []string
	var errs []error
	remove := func(path string) bool {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
			return false
		}
		removed = append(removed, path)
		return true
	}
	partials := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), partialPrefix) && e.IsDir() {
			partials[e.Name()] = true
		}
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case partials[e.Name()]:
			st, fl := probeOwner(path)
			switch st {
			case ownerLive:
				continue
			case ownerUnknown:
				if now.Sub(newest(path)) < LeftoverAge {
					continue
				}
			}
			if remove(path) {
				_ = os.Remove(ownerPath(path))
			}
			if fl != nil {
				_ = fl.Unlock()
			}
		case strings.HasPrefix(e.Name(), partialPrefix) && strings.HasSuffix(e.Name(), ownerSuffix) && e.Type().IsRegular():
			// An owner file whose directory is gone: a crash between the
			// two, or a run that is just starting (claim comes first).
			if partials[strings.TrimSuffix(e.Name(), ownerSuffix)] {
				continue
			}
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < time.Minute {
				continue
			}
			fl := flock.New(path, flock.SetFlag(os.O_RDWR))
			if ok, err := fl.TryLock(); err == nil && ok {
				if os.Remove(path) == nil {
					removed = append(removed, path)
				}
				_ = fl.Unlock()
			}
		case isTemp(e):
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > tempAge {
				remove(path)
			}
		case ValidID(e.Name()) && e.IsDir():
			inner, err := os.ReadDir(path)
			if err != nil {
				continue
			}
			for _, f := range inner {
				if !isTemp(f) {
					continue
				}
				if fi, err := f.Info(); err == nil && now.Sub(fi.ModTime()) > tempAge {
					remove(filepath.Join(path, f.Name()))
				}
			}
		}
	}
	return removed, errors.Join(errs...)
}
