package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// ageBackup copies the real backup src into a backup that started at
// started: the same archives under a manifest with a new ID and times, as
// if it had been made then.
func ageBackup(t *testing.T, p *Project, src string, started time.Time) string {
	t.Helper()
	dir := filepath.Join(p.Dir, "backups")
	m, err := archive.ReadManifest(filepath.Join(dir, src, archive.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	id := archive.NewID(started)
	dst := filepath.Join(dir, id)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(dir, src))); err != nil {
		t.Fatal(err)
	}
	m.ID, m.Started, m.Finished = id, started, started.Add(time.Second)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, archive.ManifestName), append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

func backupIDs(t *testing.T, p *Project) map[string]bool {
	t.Helper()
	entries, err := archive.List(filepath.Join(p.Dir, "backups"), p.Name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[e.ID] = true
	}
	return out
}

func mustAutobackup(t *testing.T, p *Project, args ...string) Result {
	t.Helper()
	r := p.Autobackup(t, args...)
	if r.Code != 0 {
		t.Fatalf("docker autobackup %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// A history of aged backups pruned by a daily/weekly/monthly policy keeps
// the newest backup of each of the last 7 days, 4 ISO weeks and 3 months in
// the host's time zone; then a backup of an emptied volume stops pruning
// until --force.
func TestRetentionGFS(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "store", "dd", "if=/dev/urandom", "of=/data/blob", "bs=1024", "count=512")
	real := mustRun(t, p)

	// One backup a day at 03:00 for the 60 days before the real one.
	now := time.Now()
	type aged struct {
		id      string
		started time.Time
	}
	history := []aged{{real, now}}
	for i := 1; i <= 60; i++ {
		d := now.AddDate(0, 0, -i)
		started := time.Date(d.Year(), d.Month(), d.Day(), 3, 0, 0, 0, time.Local)
		history = append(history, aged{ageBackup(t, p, real, started), started})
	}
	for _, kv := range [][2]string{{"keep_daily", "7"}, {"keep_weekly", "4"}, {"keep_monthly", "3"}, {"keep_min", "1"}} {
		mustAutobackup(t, p, "config", "set", kv[0], kv[1])
	}

	// What the policy keeps, worked out by calendar here: newest first,
	// the first backup of each new period until the rule has its count.
	want := map[string]bool{}
	for _, rule := range []struct {
		n      int
		period func(time.Time) string
	}{
		{7, func(t time.Time) string { return t.Format("2006-01-02") }},
		{4, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprint(y, w) }},
		{3, func(t time.Time) string { return t.Format("2006-01") }},
	} {
		seen := map[string]bool{}
		for _, h := range history {
			per := rule.period(h.started.In(time.Local))
			if len(seen) < rule.n && !seen[per] {
				seen[per] = true
				want[h.id] = true
			}
		}
	}

	dry := mustAutobackup(t, p, "prune", "--dry-run")
	for _, h := range history {
		verb := "would delete "
		if want[h.id] {
			verb = "keep "
		}
		if !strings.Contains(dry.Stdout, verb+h.id) {
			t.Errorf("dry run does not say %q:\n%s", verb+h.id, dry.Stdout)
		}
	}
	if len(backupIDs(t, p)) != len(history) {
		t.Fatalf("the dry run deleted backups")
	}
	mustAutobackup(t, p, "prune")
	left := backupIDs(t, p)
	if len(left) != len(want) {
		t.Errorf("%d backups left, want %d", len(left), len(want))
	}
	for id := range want {
		if !left[id] {
			t.Errorf("backup %s was deleted, want it kept", id)
		}
	}

	// An old backup that the policy lets go, then a backup of the emptied
	// volume: the run succeeds and warns, and the old one stays.
	old := ageBackup(t, p, real, now.AddDate(0, 0, -200))
	p.Compose(t, "exec", "-T", "store", "rm", "/data/blob")
	r := p.Autobackup(t, "run")
	if r.Code != 0 || !strings.Contains(r.Stderr, "WARNING  pruning stopped: the newest successful backup") {
		t.Fatalf("run of an emptied volume: %v", r)
	}
	suspect := strings.TrimSpace(r.Stdout)
	if !backupIDs(t, p)[old] {
		t.Fatalf("pruning stopped, yet %s was deleted", old)
	}
	st := mustAutobackup(t, p, "status")
	if !strings.Contains(st.Stdout, "Pruning:      STOPPED: the newest successful backup "+suspect) {
		t.Errorf("status does not say why pruning stopped:\n%s", st.Stdout)
	}
	if r := p.Autobackup(t, "prune"); r.Code != 1 || !strings.Contains(r.Stderr, "pruning stopped") {
		t.Errorf("prune with a suspicious backup: %v", r)
	}
	mustAutobackup(t, p, "prune", "--force")
	if backupIDs(t, p)[old] {
		t.Errorf("prune --force kept %s", old)
	}
}
