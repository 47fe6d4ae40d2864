package retention

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/archive"
)

// Day is the unit of Policy.RetentionDays. Retention counts elapsed time,
// not calendar days, so a daylight saving change does not move the cut-off.
const Day = 24 * time.Hour

// LeftoverAge is how old a partial backup left by an interrupted run must be
// before pruning removes it: a younger one may still be being written.
const LeftoverAge = Day

// Policy is the retention configuration of a project.
type Policy struct {
	// RetentionDays: backups that started more than this many days before
	// now are deleted (unless kept by KeepMin). Below 1 nothing is deleted
	// by age.
	RetentionDays int
	// KeepMin newest successful backups are always kept. Values below 1
	// count as 1: the newest successful backup is never deleted.
	KeepMin int
	// Unsuccessful holds IDs of complete backups the state file records as
	// not successful (for example the archive was written but services did
	// not come back). They may be deleted by age but do not count towards
	// KeepMin. May be nil.
	Unsuccessful map[string]bool
}

// Item is one backup and what Decide made of it.
type Item struct {
	ID      string
	Path    string
	Started time.Time // from the manifest; zero for a broken backup
	Reason  string    // why it is kept or deleted, for people
	Err     error     // a broken backup's manifest error
}

// Decision is the result of Decide. Every backup given to Decide is in
// exactly one of Keep, Delete and Broken, each newest first.
type Decision struct {
	Keep   []Item
	Delete []Item
	// Broken backups have a missing or invalid manifest. They are never
	// deleted automatically; they are kept on disk and reported.
	Broken []Item
}

// Decide applies p to the complete backups entries (as archive.List returns
// them, in any order) at time now. See the package documentation for the
// rules.
func Decide(now time.Time, entries []archive.Entry, p Policy) Decision {
	var d Decision
	var good []archive.Entry
	for _, e := range entries {
		if e.Manifest == nil || e.Manifest.Started.IsZero() {
			err := e.Err
			if err == nil {
				err = errors.New("manifest has no start time")
			}
			d.Broken = append(d.Broken, Item{ID: e.ID, Path: e.Path, Err: err,
				Reason: "manifest unreadable: never deleted automatically; check it with docker autobackup verify " + e.ID})
			continue
		}
		good = append(good, e)
	}
	sort.SliceStable(good, func(i, j int) bool {
		ti, tj := good[i].Manifest.Started, good[j].Manifest.Started
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return good[i].ID > good[j].ID
	})

	keepMin := max(p.KeepMin, 1)
	successes := 0
	for _, e := range good {
		if !p.Unsuccessful[e.ID] {
			successes++
		}
	}
	var cutoff time.Time
	if p.RetentionDays > 0 {
		cutoff = now.Add(-time.Duration(p.RetentionDays) * Day)
	}
	kept := 0 // successful backups kept so far, newest first
	for _, e := range good {
		it := Item{ID: e.ID, Path: e.Path, Started: e.Manifest.Started}
		success := !p.Unsuccessful[e.ID]
		age := now.Sub(it.Started)
		switch {
		case success && kept < keepMin:
			kept++
			if successes == 1 {
				it.Reason = "the only successful backup: never deleted"
			} else if kept == 1 {
				it.Reason = "the newest successful backup: never deleted"
			} else {
				it.Reason = fmt.Sprintf("one of the %d newest successful backups (keep_min = %d)", keepMin, p.KeepMin)
			}
			d.Keep = append(d.Keep, it)
		case successes == 0:
			it.Reason = "no successful backup exists: nothing is deleted"
			d.Keep = append(d.Keep, it)
		case cutoff.IsZero() || !it.Started.Before(cutoff):
			it.Reason = fmt.Sprintf("%s old, within retention_days = %d", ageString(age), p.RetentionDays)
			d.Keep = append(d.Keep, it)
		default:
			it.Reason = fmt.Sprintf("%s old, older than retention_days = %d", ageString(age), p.RetentionDays)
			if !success {
				it.Reason += " (recorded as not successful)"
			}
			d.Delete = append(d.Delete, it)
		}
	}
	return d
}

// ageString formats an age in days (and hours below two days).
func ageString(d time.Duration) string {
	if d < 0 {
		return "in the future (clock skew?), 0 days"
	}
	if d < 2*Day {
		return fmt.Sprintf("%.1f hours", d.Hours())
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

// deletingPrefix names a backup directory being deleted. The rename first
// makes a deletion atomic for readers: a backup is either complete under its
// ID or gone, never half deleted under its ID with files missing.
const deletingPrefix = ".deleting-"

// Apply deletes the backups in d.Delete from dir and returns the IDs it
// deleted, in d.Delete's order. Each is renamed out of the way first, then
// removed. It also finishes deletions an earlier Apply could not complete.
// A backup whose directory is already gone counts as deleted. Callers hold
// the project lock.
func Apply(dir string, d Decision) ([]string, error) {
	var deleted []string
	var errs []error
	for _, it := range d.Delete {
		if !archive.ValidID(it.ID) || filepath.Dir(it.Path) != filepath.Clean(dir) || filepath.Base(it.Path) != it.ID {
			errs = append(errs, fmt.Errorf("delete backup %s: path %s is not a backup in %s", it.ID, it.Path, dir))
			continue
		}
		tmp := filepath.Join(dir, deletingPrefix+it.ID)
		if err := os.Rename(it.Path, tmp); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				deleted = append(deleted, it.ID)
				continue
			}
			errs = append(errs, fmt.Errorf("delete backup %s: %w", it.ID, err))
			continue
		}
		deleted = append(deleted, it.ID)
		if err := os.RemoveAll(tmp); err != nil {
			errs = append(errs, fmt.Errorf("delete backup %s: %w (what is left is in %s and is removed by the next prune)", it.ID, err, tmp))
		}
	}
	if err := removeStale(dir); err != nil {
		errs = append(errs, err)
	}
	return deleted, errors.Join(errs...)
}

// removeStale removes what an earlier Apply renamed but could not remove.
func removeStale(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("prune %s: %w", dir, err)
	}
	var errs []error
	for _, de := range des {
		if strings.HasPrefix(de.Name(), deletingPrefix) && de.IsDir() {
			if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
				errs = append(errs, fmt.Errorf("prune: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
