package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zoneinfo

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// at returns a successful backup that started at t, holding size bytes.
func at(t time.Time, size int64) archive.Entry {
	id := archive.NewID(t)
	m := &archive.Manifest{ID: id, Started: t}
	if size > 0 {
		m.Volumes = []archive.Volume{{Name: "v", TarBytes: size}}
	}
	return archive.Entry{ID: id, Path: "/b/" + id, Manifest: m}
}

func tagged(e archive.Entry, tag string) archive.Entry {
	m := *e.Manifest
	m.Tag = tag
	e.Manifest = &m
	return e
}

func loadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// startTimes returns the start times of items, formatted in loc.
func startTimes(items []Item, loc *time.Location) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Started.In(loc).Format("2006-01-02 15:04"))
	}
	slices.Sort(out)
	return out
}

// The example of restic's documentation (Removing backup snapshots): a
// backup every weekday for two weeks, an extra one on Fridays, the
// Wednesday of the second week missed. keep_daily 5 keeps the newest of
// each of the last five days that have a backup, reaching back to the
// first Friday.
func TestDecideResticDailyExample(t *testing.T) {
	utc := time.UTC
	times := []string{
		"2025-04-21 11:00", "2025-04-22 11:00", "2025-04-23 11:00", "2025-04-24 11:00",
		"2025-04-25 11:00", "2025-04-25 23:00", "2025-04-28 11:00", "2025-04-29 11:00",
		"2025-05-01 11:00", "2025-05-02 11:00", "2025-05-02 23:00",
	}
	var entries []archive.Entry
	for _, s := range times {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, utc)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, at(tm, 100))
	}
	now := time.Date(2025, 5, 3, 0, 0, 0, 0, utc)
	got := Decide(now, entries, Policy{KeepDaily: 5, Location: utc})
	wantKeep := []string{"2025-04-25 23:00", "2025-04-28 11:00", "2025-04-29 11:00", "2025-05-01 11:00", "2025-05-02 23:00"}
	wantDelete := []string{"2025-04-21 11:00", "2025-04-22 11:00", "2025-04-23 11:00", "2025-04-24 11:00", "2025-04-25 11:00", "2025-05-02 11:00"}
	if g := startTimes(got.Keep, utc); !slices.Equal(g, wantKeep) {
		t.Errorf("keep = %v, want %v", g, wantKeep)
	}
	if g := startTimes(got.Delete, utc); !slices.Equal(g, wantDelete) {
		t.Errorf("delete = %v, want %v", g, wantDelete)
	}
	for _, it := range got.Keep {
		if !strings.Contains(it.Reason, "keep_daily") {
			t.Errorf("%s kept for %q, want a keep_daily reason", it.ID, it.Reason)
		}
	}
}

// restic's documentation: one backup a day for 100 years, keep_daily 7,
// keep_weekly 5, keep_monthly 12, keep_yearly 75 keeps the last 7 days,
// the last day of the weeks and months before them, and the last day of
// 75 years; everything else goes.
func TestDecideResticHundredYears(t *testing.T) {
	utc := time.UTC
	last := time.Date(2026, 11, 25, 2, 0, 0, 0, utc) // a Wednesday
	var entries []archive.Entry
	for d := last; !d.Before(last.AddDate(-100, 0, 0)); d = d.AddDate(0, 0, -1) {
		entries = append(entries, at(d, 100))
	}
	got := Decide(last.Add(time.Hour), entries, Policy{KeepDaily: 7, KeepWeekly: 5, KeepMonthly: 12, KeepYearly: 75, Location: utc})

	var want []string
	day := func(y int, m time.Month, d int) {
		want = append(want, time.Date(y, m, d, 2, 0, 0, 0, utc).Format("2006-01-02 15:04"))
	}
	for d := 19; d <= 25; d++ { // daily: Thursday 19 to Wednesday 25
		day(2026, 11, d)
	}
	day(2026, 11, 15) // weekly: the Sundays of the three weeks before; the 22nd is a daily
	day(2026, 11, 8)
	day(2026, 11, 1)
	for m := time.October; m >= time.January; m-- { // monthly: the last day of each earlier month
		day(2026, m, time.Date(2026, m+1, 0, 0, 0, 0, 0, utc).Day())
	}
	day(2025, 12, 31)
	for y := 2024; y >= 2026-74; y-- { // yearly: 2026 and 2025 are kept already
		day(y, 12, 31)
	}
	slices.Sort(want)
	if g := startTimes(got.Keep, utc); !slices.Equal(g, want) {
		t.Errorf("kept %d backups, want %d\n got %v\nwant %v", len(g), len(want), g, want)
	}
	if len(got.Keep)+len(got.Delete) != len(entries) {
		t.Errorf("%d kept + %d deleted, want %d in all", len(got.Keep), len(got.Delete), len(entries))
	}
}

// A calendar rule that finds fewer periods than it asks for keeps the
// oldest backup too (restic since 0.17, borg since 1.2).
func TestDecideKeepsOldestWhenRuleNotUsedUp(t *testing.T) {
	utc := time.UTC
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, utc)
	entries := []archive.Entry{
		at(base.Add(1*time.Hour), 1), at(base.Add(5*time.Hour), 1), // day 1: the 01:00 is the oldest
		at(base.Add(25*time.Hour), 1), at(base.Add(29*time.Hour), 1), // day 2
		at(base.Add(49*time.Hour), 1), at(base.Add(53*time.Hour), 1), // day 3
	}
	got := Decide(base.Add(60*time.Hour), entries, Policy{KeepDaily: 10, Location: utc})
	want := []string{"2026-11-20 01:00", "2026-11-20 05:00", "2026-11-21 05:00", "2026-11-22 05:00"}
	if g := startTimes(got.Keep, utc); !slices.Equal(g, want) {
		t.Errorf("keep = %v, want %v", g, want)
	}
	for _, it := range got.Keep {
		if it.Started.Equal(base.Add(time.Hour)) && !strings.Contains(it.Reason, "oldest") {
			t.Errorf("oldest kept for %q", it.Reason)
		}
	}
}

// Calendar periods are those of the host's time zone: in New York two
// evening backups fall on one local day although they are on two UTC days
// (20:30 EST is 01:30 UTC the next day).
func TestDecideLocalDays(t *testing.T) {
	ny := loadLocation(t, "America/New_York")
	var entries []archive.Entry
	for _, d := range []int{23, 24} {
		entries = append(entries, at(time.Date(2026, 11, d, 18, 0, 0, 0, ny), 1), at(time.Date(2026, 11, d, 20, 30, 0, 0, ny), 1))
	}
	got := Decide(time.Date(2026, 11, 25, 12, 0, 0, 0, ny), entries, Policy{KeepDaily: 2, Location: ny})
	want := []string{"2026-11-23 20:30", "2026-11-24 20:30"}
	if g := startTimes(got.Keep, ny); !slices.Equal(g, want) {
		t.Errorf("keep = %v, want %v (local days)", g, want)
	}
	// The same backups judged in UTC.
	got = Decide(time.Date(2026, 11, 25, 12, 0, 0, 0, ny), entries, Policy{KeepDaily: 2, Location: time.UTC})
	want = []string{"2026-11-24 18:00", "2026-11-24 20:30"}
	if g := startTimes(got.Keep, ny); !slices.Equal(g, want) {
		t.Errorf("keep in UTC = %v, want %v", g, want)
	}
}

// Hours of the fall-back night: 01:xx happens twice in New York and is one
// calendar hour, as the wall clock shows it.
func TestDecideDSTHours(t *testing.T) {
	ny := loadLocation(t, "America/New_York")
	first := time.Date(2026, 11, 1, 0, 30, 0, 0, ny) // 00:30 EDT
	var entries []archive.Entry
	for i := range 4 { // 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST
		entries = append(entries, at(first.Add(time.Duration(i)*time.Hour), 1))
	}
	got := Decide(first.Add(5*time.Hour), entries, Policy{KeepHourly: 2, Location: ny})
	var kept []string
	for _, it := range got.Keep {
		kept = append(kept, it.Started.In(ny).Format("15:04 MST"))
	}
	want := []string{"02:30 EST", "01:30 EST"}
	if !slices.Equal(kept, want) {
		t.Errorf("keep = %v, want %v", kept, want)
	}
}

func TestDecideRules(t *testing.T) {
	const h = time.Hour
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b := func(age time.Duration, size int64) archive.Entry { return at(base.Add(-age), size) }
	a, bb, c, dd, e := b(1*h, 100), b(2*h, 100), b(26*h, 100), b(50*h, 100), b(30*24*h, 100)
	small, half, empty := b(1*h, 49), b(1*h, 50), b(1*h, 0)
	tests := []struct {
		name    string
		entries []archive.Entry
		policy  Policy
		keep    []archive.Entry
		held    []archive.Entry
		stopped bool
	}{
		{
			name:    "keep_last",
			entries: []archive.Entry{a, bb, c, dd, e},
			policy:  Policy{KeepLast: 2},
			keep:    []archive.Entry{a, bb},
		},
		{
			name:    "keep_last and retention_days combine",
			entries: []archive.Entry{a, bb, c, dd, e},
			policy:  Policy{KeepLast: 1, RetentionDays: 2},
			keep:    []archive.Entry{a, bb, c},
		},
		{
			name:    "keep_min is a floor under the rules",
			entries: []archive.Entry{a, bb, c, dd, e},
			policy:  Policy{KeepDaily: 1, KeepMin: 4},
			keep:    []archive.Entry{a, bb, c, dd},
		},
		{
			name:    "tagged backups do not push scheduled ones out",
			entries: []archive.Entry{tagged(a, "pre-upgrade"), tagged(bb, "pre-upgrade"), c, dd, tagged(e, "pre-upgrade")},
			policy:  Policy{KeepLast: 2, KeepTagged: 1},
			keep:    []archive.Entry{tagged(a, "pre-upgrade"), c, dd},
		},
		{
			name:    "without keep_tagged a tagged backup counts like any other",
			entries: []archive.Entry{tagged(a, "pre-upgrade"), tagged(bb, "pre-upgrade"), c, dd},
			policy:  Policy{KeepLast: 2},
			keep:    []archive.Entry{tagged(a, "pre-upgrade"), tagged(bb, "pre-upgrade")},
		},
		{
			name:    "the guard: the newest holds under half of the one before",
			entries: []archive.Entry{small, bb, c, dd, e},
			policy:  Policy{KeepLast: 1, Guard: 0.5},
			keep:    []archive.Entry{small},
			held:    []archive.Entry{bb, c, dd, e},
			stopped: true,
		},
		{
			name:    "the guard: half is enough",
			entries: []archive.Entry{half, bb, c},
			policy:  Policy{KeepLast: 1, Guard: 0.5},
			keep:    []archive.Entry{half},
		},
		{
			name:    "the guard: an empty newest backup",
			entries: []archive.Entry{empty, bb, c},
			policy:  Policy{KeepLast: 1, Guard: 0.01},
			keep:    []archive.Entry{empty},
			held:    []archive.Entry{bb, c},
			stopped: true,
		},
		{
			name:    "the guard off",
			entries: []archive.Entry{empty, bb, c},
			policy:  Policy{KeepLast: 1},
			keep:    []archive.Entry{empty},
		},
		{
			// The small failed run is no keeper: the guard compares bb and c,
			// and the failed run goes, as no rule keeps it.
			name:    "the guard compares successful backups only",
			entries: []archive.Entry{small, bb, c, dd},
			policy:  Policy{KeepLast: 1, Guard: 0.5, Unsuccessful: map[string]bool{small.ID: true}},
			keep:    []archive.Entry{bb},
		},
		{
			name:    "an unverified backup is no keeper",
			entries: []archive.Entry{a, bb, c},
			policy:  Policy{KeepLast: 1, Unverified: map[string]string{a.ID: "checksum mismatch"}},
			keep:    []archive.Entry{bb},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(base, tt.entries, tt.policy)
			wantIDs := func(es []archive.Entry) []string {
				out := []string{}
				for _, e := range es {
					out = append(out, e.ID)
				}
				slices.Sort(out)
				slices.Reverse(out)
				return out
			}
			if g, w := ids(got.Keep), wantIDs(tt.keep); !slices.Equal(g, w) {
				t.Errorf("keep = %v, want %v", g, w)
			}
			if g, w := ids(got.Held), wantIDs(tt.held); !slices.Equal(g, w) {
				t.Errorf("held = %v, want %v", g, w)
			}
			if (got.Stopped != "") != tt.stopped {
				t.Errorf("stopped = %q, want stopped %v", got.Stopped, tt.stopped)
			}
			if tt.stopped && len(got.Delete) > 0 {
				t.Errorf("stopped, yet deletes %v", ids(got.Delete))
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p       Policy
		wantErr string
	}{
		{Policy{RetentionDays: 7, KeepMin: 3, Guard: 0.5}, ""},
		{Policy{KeepDaily: 7}, ""},
		{Policy{KeepTagged: 5, RetentionDays: 7}, ""},
		{Policy{}, "no rule would ever let a backup go"},
		{Policy{KeepTagged: 5}, "no rule would ever let a backup go"},
		{Policy{KeepDaily: -1, RetentionDays: 7}, "keep_daily = -1"},
		{Policy{RetentionDays: 7, Guard: 1.5}, "prune_guard = 1.5"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: err = %v, want %q", tt.p, err, tt.wantErr)
		}
	}
}

// history is a random backup history for the property tests.
type history struct {
	now     time.Time
	entries []archive.Entry
	policy  Policy
}

var zones = []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu"}

// randomHistory builds backups going back from a fake now: gaps from a
// minute to weeks (several in one hour, missed days), failed and
// unverified runs, tags, broken manifests and sizes that shrink now and
// then, across the DST changes of the zone.
func randomHistory(t *testing.T, r *rand.Rand) history {
	loc := loadLocation(t, zones[r.IntN(len(zones))])
	now := time.Date(2020+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), 0, 0, loc)
	h := history{now: now}
	p := Policy{Location: loc, Unsuccessful: map[string]bool{}, Unverified: map[string]string{}}
	t0 := now.Add(-time.Duration(r.IntN(120)) * time.Minute)
	n := r.IntN(60)
	size := int64(1000 + r.IntN(1000))
	for i := 0; i < n; i++ {
		var gap time.Duration
		switch r.IntN(4) {
		case 0:
			gap = time.Duration(1+r.IntN(30)) * time.Minute // several per hour
		case 1:
			gap = time.Duration(1+r.IntN(6)) * time.Hour
		case 2:
			gap = 24*time.Hour + time.Duration(r.IntN(120)-60)*time.Minute
		default:
			gap = time.Duration(2+r.IntN(40)) * 24 * time.Hour // missed days
		}
		t0 = t0.Add(-gap)
		if r.IntN(6) == 0 {
			size = size * int64(1+r.IntN(3)) / 2
		}
		e := at(t0, size)
		if r.IntN(20) == 0 {
			e.Manifest = nil
			e.Err = fmt.Errorf("manifest.json: truncated")
		} else if r.IntN(5) == 0 {
			e = tagged(e, "pre-upgrade")
		}
		switch r.IntN(8) {
		case 0:
			p.Unsuccessful[e.ID] = true
		case 1:
			p.Unverified[e.ID] = "checksum mismatch"
		}
		h.entries = append(h.entries, e)
	}
	if r.IntN(3) > 0 {
		p.RetentionDays = r.IntN(30)
	}
	p.KeepMin = r.IntN(4)
	rules := []*int{&p.KeepLast, &p.KeepHourly, &p.KeepDaily, &p.KeepWeekly, &p.KeepMonthly, &p.KeepYearly, &p.KeepTagged}
	for _, rule := range rules {
		if r.IntN(2) == 0 {
			*rule = 1 + r.IntN(8)
		}
	}
	if r.IntN(2) == 0 {
		p.Guard = DefaultGuard
	}
	h.policy = p
	return h
}

const rounds = 2000

func decisionString(d Decision) string {
	var b strings.Builder
	for _, l := range []struct {
		name  string
		items []Item
	}{{"keep", d.Keep}, {"delete", d.Delete}, {"held", d.Held}, {"broken", d.Broken}} {
		for _, it := range l.items {
			fmt.Fprintf(&b, "%s %s %s\n", l.name, it.ID, it.Reason)
		}
	}
	return b.String() + d.Stopped
}

func newestKeeper(h history) string {
	var best *archive.Entry
	for i, e := range h.entries {
		if e.Manifest == nil || h.policy.Unsuccessful[e.ID] || h.policy.Unverified[e.ID] != "" {
			continue
		}
		if best == nil || e.Manifest.Started.After(best.Manifest.Started) {
			best = &h.entries[i]
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

func TestPropertyNewestSuccessfulNeverDeleted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rounds {
		h := randomHistory(t, r)
		d := Decide(h.now, h.entries, h.policy)
		newest := newestKeeper(h)
		for _, it := range d.Delete {
			if it.ID == newest {
				t.Fatalf("round %d: the newest successful backup %s is deleted\n%s", i, newest, decisionString(d))
			}
			if it.Err != nil {
				t.Fatalf("round %d: broken backup %s is deleted", i, it.ID)
			}
		}
		if newest == "" && len(d.Delete) > 0 {
			t.Fatalf("round %d: no successful backup, yet %v are deleted", i, ids(d.Delete))
		}
		if d.Stopped != "" && len(d.Delete) > 0 {
			t.Fatalf("round %d: pruning stopped (%s), yet %v are deleted", i, d.Stopped, ids(d.Delete))
		}
		if got := len(d.Keep) + len(d.Delete) + len(d.Held) + len(d.Broken); got != len(h.entries) {
			t.Fatalf("round %d: %d backups in the decision, %d given", i, got, len(h.entries))
		}
	}
}

func TestPropertyOrderDoesNotMatter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range rounds {
		h := randomHistory(t, r)
		want := decisionString(Decide(h.now, h.entries, h.policy))
		shuffled := slices.Clone(h.entries)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := decisionString(Decide(h.now, shuffled, h.policy)); got != want {
			t.Fatalf("round %d: another input order gives another decision\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestPropertyPruningTwiceIsPruningOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range rounds {
		h := randomHistory(t, r)
		first := Decide(h.now, h.entries, h.policy)
		gone := map[string]bool{}
		for _, it := range first.Delete {
			gone[it.ID] = true
		}
		var left []archive.Entry
		for _, e := range h.entries {
			if !gone[e.ID] {
				left = append(left, e)
			}
		}
		second := Decide(h.now, left, h.policy)
		if len(second.Delete) > 0 || len(second.Held) > 0 && first.Stopped == "" {
			t.Fatalf("round %d: a second prune would delete %v (held %v) after the first deleted %v\nfirst:\n%s\nsecond:\n%s",
				i, ids(second.Delete), ids(second.Held), ids(first.Delete), decisionString(first), decisionString(second))
		}
	}
}

func TestPropertyMoreRulesNeverDeleteMore(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range rounds {
		h := randomHistory(t, r)
		before := Decide(h.now, h.entries, h.policy)
		more := h.policy
		// keep_tagged is left out when it is off: turning it on moves tagged
		// backups from the other rules to their own (see Policy.KeepTagged).
		rules := []*int{&more.RetentionDays, &more.KeepMin, &more.KeepLast, &more.KeepHourly, &more.KeepDaily, &more.KeepWeekly, &more.KeepMonthly, &more.KeepYearly}
		if more.KeepTagged > 0 {
			rules = append(rules, &more.KeepTagged)
		}
		rule := rules[r.IntN(len(rules))]
		*rule += 1 + r.IntN(10)
		after := Decide(h.now, h.entries, more)
		was := map[string]bool{}
		for _, it := range before.Delete {
			was[it.ID] = true
		}
		for _, it := range after.Delete {
			if !was[it.ID] {
				t.Fatalf("round %d: with %+v instead of %+v, %s is deleted too", i, more, h.policy, it.ID)
			}
		}
	}
}
