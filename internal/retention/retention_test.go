package retention

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// backup returns an entry whose manifest says it started age ago. Its ID
// carries an unrelated time on purpose: only the manifest counts.
func backup(id string, age time.Duration) archive.Entry {
	return archive.Entry{ID: id, Path: "/b/" + id, Manifest: &archive.Manifest{ID: id, Started: now.Add(-age)}}
}

func broken(id string) archive.Entry {
	return archive.Entry{ID: id, Path: "/b/" + id, Err: errors.New("manifest.json: unexpected end of JSON input")}
}

func ids(items []Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestDecide(t *testing.T) {
	const d = Day
	tests := []struct {
		name         string
		entries      []archive.Entry
		policy       Policy
		keep, delete []string
		broken       []string
	}{
		{
			name:    "nothing",
			policy:  Policy{RetentionDays: 7, KeepMin: 3},
			keep:    []string{},
			delete:  []string{},
			broken:  []string{},
			entries: nil,
		},
		{
			name:    "all old: keep_min newest kept",
			entries: []archive.Entry{backup("a", 30*d), backup("b", 20*d), backup("c", 10*d), backup("d", 9*d), backup("e", 8*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 3},
			keep:    []string{"e", "d", "c"},
			delete:  []string{"b", "a"},
			broken:  []string{},
		},
		{
			name:    "only one success is never deleted, even with keep_min 0",
			entries: []archive.Entry{backup("a", 400*d)},
			policy:  Policy{RetentionDays: 1, KeepMin: 0},
			keep:    []string{"a"},
			delete:  []string{},
			broken:  []string{},
		},
		{
			name:    "newest success kept when the newer ones are unsuccessful",
			entries: []archive.Entry{backup("old", 40*d), backup("bad1", 30*d), backup("bad2", 20*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 1, Unsuccessful: map[string]bool{"bad1": true, "bad2": true}},
			keep:    []string{"old"},
			delete:  []string{"bad2", "bad1"},
			broken:  []string{},
		},
		{
			name:    "no success at all: nothing deleted",
			entries: []archive.Entry{backup("bad1", 30*d), backup("bad2", 20*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 1, Unsuccessful: map[string]bool{"bad1": true, "bad2": true}},
			keep:    []string{"bad2", "bad1"},
			delete:  []string{},
			broken:  []string{},
		},
		{
			name:    "keep_min larger than the number of backups",
			entries: []archive.Entry{backup("a", 100*d), backup("b", 50*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 10},
			keep:    []string{"b", "a"},
			delete:  []string{},
			broken:  []string{},
		},
		{
			name: "boundary: exactly retention_days old is kept, a second more is deleted",
			entries: []archive.Entry{backup("new1", 0), backup("new2", time.Hour),
				backup("exact", 7*d), backup("over", 7*d+time.Second)},
			policy: Policy{RetentionDays: 7, KeepMin: 2},
			keep:   []string{"new1", "new2", "exact"},
			delete: []string{"over"},
			broken: []string{},
		},
		{
			name:    "broken manifests are reported, never deleted",
			entries: []archive.Entry{broken("x"), backup("a", 30*d), backup("b", 20*d), backup("c", 1*d), broken("y")},
			policy:  Policy{RetentionDays: 7, KeepMin: 1},
			keep:    []string{"c"},
			delete:  []string{"b", "a"},
			broken:  []string{"y", "x"}, // by ID, newest first, whatever the input order
		},
		{
			name:    "input order does not matter: sorted by manifest time",
			entries: []archive.Entry{backup("c", 10*d), backup("a", 30*d), backup("e", 8*d), backup("b", 20*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 2},
			keep:    []string{"e", "c"},
			delete:  []string{"b", "a"},
			broken:  []string{},
		},
		{
			name:    "a backup from the future (clock skew) is kept",
			entries: []archive.Entry{backup("future", -2*d), backup("a", 30*d), backup("b", 20*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 1},
			keep:    []string{"future"},
			delete:  []string{"b", "a"},
			broken:  []string{},
		},
		{
			name:    "a recent unsuccessful backup is kept by age and does not count towards keep_min",
			entries: []archive.Entry{backup("bad", 1*d), backup("a", 30*d), backup("b", 20*d)},
			policy:  Policy{RetentionDays: 7, KeepMin: 1, Unsuccessful: map[string]bool{"bad": true}},
			keep:    []string{"bad", "b"},
			delete:  []string{"a"},
			broken:  []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(now, tt.entries, tt.policy)
			if g := ids(got.Keep); !slices.Equal(g, tt.keep) {
				t.Errorf("keep = %v, want %v", g, tt.keep)
			}
			if g := ids(got.Delete); !slices.Equal(g, tt.delete) {
				t.Errorf("delete = %v, want %v", g, tt.delete)
			}
			if g := ids(got.Broken); !slices.Equal(g, tt.broken) {
				t.Errorf("broken = %v, want %v", g, tt.broken)
			}
			for _, it := range slices.Concat(got.Keep, got.Delete, got.Broken) {
				if it.Reason == "" {
					t.Errorf("%s has no reason", it.ID)
				}
			}
		})
	}
}

// The time in the directory and the files' mtimes say nothing about a
// backup's age: a copied-back backup with fresh mtimes is still old, and an
// old-looking directory name does not make a fresh backup deletable.
func TestDecideIgnoresMtimeAndID(t *testing.T) {
	dir := t.TempDir()
	mk := func(id string, started time.Time, mtime time.Time) archive.Entry {
		p := filepath.Join(dir, id)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return archive.Entry{ID: id, Path: p, Manifest: &archive.Manifest{ID: id, Started: started}}
	}
	entries := []archive.Entry{
		mk("20200101-000000-aaaa", now.Add(-time.Hour), now.Add(-1000*Day)),  // looks ancient, is fresh
		mk("20261125-110000-bbbb", now.Add(-2*time.Hour), now.Add(-500*Day)), // keeps "fresh" company
		mk("20261125-115900-cccc", now.Add(-30*Day), now),                    // touched just now, is old
	}
	got := Decide(now, entries, Policy{RetentionDays: 7, KeepMin: 2})
	if g, want := ids(got.Delete), []string{"20261125-115900-cccc"}; !slices.Equal(g, want) {
		t.Errorf("delete = %v, want %v", g, want)
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"20261101-020000-aaaa", "20261124-020000-bbbb"} {
		if err := os.MkdirAll(filepath.Join(dir, id, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id, "sub", "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A deletion an earlier prune could not finish.
	if err := os.MkdirAll(filepath.Join(dir, deletingPrefix+"20261001-020000-cccc"), 0o700); err != nil {
		t.Fatal(err)
	}
	d := Decision{Delete: []Item{
		{ID: "20261101-020000-aaaa", Path: filepath.Join(dir, "20261101-020000-aaaa")},
		{ID: "20261020-020000-dddd", Path: filepath.Join(dir, "20261020-020000-dddd")}, // already gone
	}}
	deleted, err := Apply(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"20261101-020000-aaaa", "20261020-020000-dddd"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted = %v, want %v", deleted, want)
	}
	des, _ := os.ReadDir(dir)
	var left []string
	for _, de := range des {
		left = append(left, de.Name())
	}
	if want := []string{"20261124-020000-bbbb"}; !slices.Equal(left, want) {
		t.Errorf("left in dir = %v, want %v", left, want)
	}
}

func TestApplyRefusesForeignPaths(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	victim := filepath.Join(other, "20261101-020000-aaaa")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Apply(dir, Decision{Delete: []Item{{ID: "20261101-020000-aaaa", Path: victim}}})
	if err == nil || !strings.Contains(err.Error(), "not a backup in") {
		t.Errorf("Apply with a path outside dir: err = %v, want a refusal", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the foreign directory was touched: %v", err)
	}
}
