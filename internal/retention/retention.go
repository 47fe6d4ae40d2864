package retention

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// Day is the unit of Policy.RetentionDays. Retention counts elapsed time,
// not calendar days, so a daylight saving change does not move the cut-off.
const Day = 24 * time.Hour

// LeftoverAge is how old a partial backup left by an interrupted run must be
// before pruning removes it: a younger one may still be being written.
const LeftoverAge = Day

// DefaultGuard is the usual Policy.Guard: pruning stops when the newest
// backup holds less than half the data of the one before.
const DefaultGuard = 0.5

// Policy is the retention configuration of one storage target, and what the
// caller knows about the backups that their manifests do not say. A backup
// is kept when any rule keeps it (the rules are ORed, as restic's and borg's
// are); only keepers count towards the count rules (see the package doc).
type Policy struct {
	// RetentionDays: backups that started at most this many days before
	// now are kept. Below 1 the rule is off.
	RetentionDays int
	// KeepMin newest keepers are always kept. Values below 1 count as 1:
	// the newest keeper is never deleted.
	KeepMin int
	// KeepLast keeps the newest KeepLast keepers.
	KeepLast int
	// KeepHourly, KeepDaily, KeepWeekly, KeepMonthly and KeepYearly keep
	// the newest keeper of each of the last N calendar hours, days, ISO
	// weeks, months and years (in Location) that have one. When a rule
	// finds fewer than N such periods, it keeps the oldest keeper too.
	KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly int
	// KeepTagged, when above 0, gives tagged backups (run --tag) a rule of
	// their own: the KeepTagged newest tagged keepers are kept, and tagged
	// backups take no part in KeepLast and the calendar rules, so a burst
	// of tagged runs cannot push the scheduled ones out. At 0 tagged
	// backups are judged like any other.
	KeepTagged int
	// Guard stops pruning when the newest keeper holds less than Guard
	// times the uncompressed bytes of the keeper before it (so also when
	// it is empty and that one was not). 0 turns the guard off.
	Guard float64
	// Location is the time zone of the calendar rules; nil means
	// time.Local.
	Location *time.Location

	// Unsuccessful holds IDs of complete backups recorded as not
	// successful (for example the archive was written but services did
	// not come back). May be nil.
	Unsuccessful map[string]bool
	// Unverified holds IDs of complete backups that cannot be trusted,
	// with the reason (a verification found them corrupt). May be nil.
	Unverified map[string]string
}

// Validate reports a policy that cannot be applied: a negative count, a
// guard outside 0..1, or no rule that lets anything go, which restic and
// borg refuse too.
func (p Policy) Validate() error {
	for _, r := range []struct {
		name string
		n    int
	}{{"retention_days", p.RetentionDays}, {"keep_min", p.KeepMin}, {"keep_last", p.KeepLast},
		{"keep_hourly", p.KeepHourly}, {"keep_daily", p.KeepDaily}, {"keep_weekly", p.KeepWeekly},
		{"keep_monthly", p.KeepMonthly}, {"keep_yearly", p.KeepYearly}, {"keep_tagged", p.KeepTagged}} {
		if r.n < 0 {
			return fmt.Errorf("retention policy: %s = %d: want 0 or more", r.name, r.n)
		}
	}
	if math.IsNaN(p.Guard) || p.Guard < 0 || p.Guard > 1 {
		return fmt.Errorf("retention policy: prune_guard = %v: want a fraction from 0 (off) to 1", p.Guard)
	}
	if p.RetentionDays < 1 && !p.hasCountRule() {
		return errors.New("retention policy: retention_days = 0 and no keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly or keep_yearly: no rule would ever let a backup go; set retention_days to 1 or more, or set a keep_* rule")
	}
	return nil
}

func (p Policy) hasCountRule() bool {
	return p.KeepLast > 0 || p.KeepHourly > 0 || p.KeepDaily > 0 || p.KeepWeekly > 0 || p.KeepMonthly > 0 || p.KeepYearly > 0
}

// String lists the rules in effect, as the settings name them.
func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s = %d", name, n))
		}
	}
	add("retention_days", p.RetentionDays)
	add("keep_last", p.KeepLast)
	add("keep_hourly", p.KeepHourly)
	add("keep_daily", p.KeepDaily)
	add("keep_weekly", p.KeepWeekly)
	add("keep_monthly", p.KeepMonthly)
	add("keep_yearly", p.KeepYearly)
	add("keep_tagged", p.KeepTagged)
	add("keep_min", max(p.KeepMin, 1))
	if p.Guard > 0 {
		parts = append(parts, "prune_guard = "+strconv.FormatFloat(p.Guard, 'f', -1, 64))
	} else {
		parts = append(parts, "prune_guard off")
	}
	return strings.Join(parts, ", ")
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
// exactly one of Keep, Delete, Held and Broken, each newest first.
type Decision struct {
	Keep   []Item
	Delete []Item
	// Held backups would be deleted, but Stopped says why pruning is
	// stopped: they stay.
	Held []Item
	// Broken backups have a missing or invalid manifest. They are never
	// deleted automatically; they are kept on disk and reported.
	Broken []Item
	// Stopped is why nothing is deleted, when the guard stopped pruning
	// (see Policy.Guard); empty otherwise. Suspect names the backup that
	// stopped it.
	Stopped string
	Suspect string
}

// candidate is a backup with a valid manifest while Decide works on it.
type candidate struct {
	e       archive.Entry
	keeper  bool // successful and verified: counts for the rules
	tagged  bool // judged by KeepTagged instead of the count rules
	reasons []string
}

// Decide applies p to the complete backups entries (as archive.List returns
// them, in any order) at time now. It reads nothing from disk: a storage
// target lists its backups and passes them in. See the package
// documentation for the rules.
func Decide(now time.Time, entries []archive.Entry, p Policy) Decision {
	var d Decision
	var cs []*candidate
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
		c := &candidate{e: e, keeper: !p.Unsuccessful[e.ID] && p.Unverified[e.ID] == ""}
		c.tagged = p.KeepTagged > 0 && e.Manifest.Tag != ""
		cs = append(cs, c)
	}
	sort.SliceStable(d.Broken, func(i, j int) bool { return d.Broken[i].ID > d.Broken[j].ID })
	sort.SliceStable(cs, func(i, j int) bool {
		ti, tj := cs[i].e.Manifest.Started, cs[j].e.Manifest.Started
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return cs[i].e.ID > cs[j].e.ID
	})
	var keepers, pool, tagged []*candidate
	for _, c := range cs {
		if !c.keeper {
			continue
		}
		keepers = append(keepers, c)
		if c.tagged {
			tagged = append(tagged, c)
		} else {
			pool = append(pool, c)
		}
	}
	if len(keepers) == 0 {
		for _, c := range cs {
			d.Keep = append(d.Keep, c.item("no successful backup exists: nothing is deleted"))
		}
		return d
	}

	keepMin := max(p.KeepMin, 1)
	for i, c := range keepers[:min(keepMin, len(keepers))] {
		switch {
		case len(keepers) == 1:
			c.add("the only successful backup: never deleted")
		case i == 0:
			c.add("the newest successful backup: never deleted")
		default:
			c.add(fmt.Sprintf("one of the %d newest successful backups (keep_min = %d)", keepMin, p.KeepMin))
		}
	}
	if p.RetentionDays > 0 {
		cutoff := now.Add(-time.Duration(p.RetentionDays) * Day)
		for _, c := range cs {
			if !c.e.Manifest.Started.Before(cutoff) {
				c.add(fmt.Sprintf("%s old, within retention_days = %d", ageString(now.Sub(c.e.Manifest.Started)), p.RetentionDays))
			}
		}
	}
	for i, c := range tagged[:min(p.KeepTagged, len(tagged))] {
		c.add(fmt.Sprintf("tagged %q: %d of keep_tagged = %d", c.e.Manifest.Tag, i+1, p.KeepTagged))
	}
	loc := p.Location
	if loc == nil {
		loc = time.Local
	}
	for _, r := range []struct {
		name   string
		n      int
		period func(t time.Time) string
	}{
		{"keep_last", p.KeepLast, nil},
		{"keep_hourly", p.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02 15h") }},
		{"keep_daily", p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"keep_weekly", p.KeepWeekly, func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"keep_monthly", p.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"keep_yearly", p.KeepYearly, func(t time.Time) string { return t.Format("2006") }},
	} {
		if r.n < 1 {
			continue
		}
		used, last := 0, ""
		for i, c := range pool {
			if used == r.n {
				break
			}
			if r.period == nil {
				used++
				c.add(fmt.Sprintf("%s: %d of %d", r.name, used, r.n))
				continue
			}
			per := r.period(c.e.Manifest.Started.In(loc))
			switch {
			case per != last:
				used++
				last = per
				c.add(fmt.Sprintf("%s: newest of %s (%d of %d)", r.name, per, used, r.n))
			case i == len(pool)-1:
				// Fewer periods than the rule asks for: keep the oldest
				// too, so the history reaches as far back as it can.
				c.add(fmt.Sprintf("%s: the oldest backup (only %d of %d periods have one)", r.name, used, r.n))
			}
		}
	}

	if p.Guard > 0 {
		d.Stopped, d.Suspect = guard(keepers, p.Guard)
	}
	for _, c := range cs {
		if len(c.reasons) > 0 {
			d.Keep = append(d.Keep, c.item(strings.Join(c.reasons, "; ")))
			continue
		}
		it := c.item(c.deleteReason(now, p))
		if d.Stopped != "" {
			it.Reason += "; held: pruning is stopped"
			d.Held = append(d.Held, it)
			continue
		}
		d.Delete = append(d.Delete, it)
	}
	return d
}

func (c *candidate) add(reason string) { c.reasons = append(c.reasons, reason) }

func (c *candidate) item(reason string) Item {
	return Item{ID: c.e.ID, Path: c.e.Path, Started: c.e.Manifest.Started, Reason: reason}
}

func (c *candidate) deleteReason(now time.Time, p Policy) string {
	age := ageString(now.Sub(c.e.Manifest.Started))
	var r string
	switch {
	case p.RetentionDays > 0:
		r = fmt.Sprintf("%s old, older than retention_days = %d", age, p.RetentionDays)
	default:
		r = age + " old"
	}
	switch {
	case p.Unsuccessful[c.e.ID]:
		r += ", recorded as not successful (only retention_days keeps such a backup)"
	case p.Unverified[c.e.ID] != "":
		r += ", not verified (" + p.Unverified[c.e.ID] + "; only retention_days keeps such a backup)"
	case c.tagged:
		r += fmt.Sprintf(", tagged %q and not among the keep_tagged = %d newest tagged backups", c.e.Manifest.Tag, p.KeepTagged)
	case p.hasCountRule():
		r += ", and no keep_* rule keeps it"
	}
	return r
}

// guard returns why pruning must stop, and the suspect's ID, when the
// newest keeper is empty or much smaller than the keeper before it. Two
// empty backups in a row (a project whose volumes hold nothing) are not
// suspicious.
func guard(keepers []*candidate, ratio float64) (string, string) {
	if len(keepers) < 2 {
		return "", "" // nothing to compare with, and no other keeper to lose
	}
	newest := keepers[0]
	n := uncompressed(newest.e.Manifest)
	prev := keepers[1]
	pn := uncompressed(prev.e.Manifest)
	switch {
	case n == 0 && pn > 0:
		return fmt.Sprintf("the newest successful backup %s is empty, and %s before it held %s", newest.e.ID, prev.e.ID, humanBytes(pn)), newest.e.ID
	case float64(n) < ratio*float64(pn):
		return fmt.Sprintf("the newest successful backup %s holds %s, under prune_guard = %s of the %s that %s before it held",
			newest.e.ID, humanBytes(n), strconv.FormatFloat(ratio, 'f', -1, 64), humanBytes(pn), prev.e.ID), newest.e.ID
	}
	return "", ""
}

// uncompressed is the size of a backup's data: its tar streams.
func uncompressed(m *archive.Manifest) int64 {
	var n int64
	for _, v := range m.Volumes {
		n += v.TarBytes
	}
	return n
}

func humanBytes(n int64) string { return size.Format(n) + " uncompressed" }

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
