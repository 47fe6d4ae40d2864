package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

func TestComposeHooks(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "echo 7 > /data/gen; rm -f /data/*.marker")

	dry := p.Autobackup(t, "run", "--dry-run")
	for _, want := range []string{"skipped: x-autobackup skip: true", "kept running: proxy"} {
		if !strings.Contains(dry.Stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, dry.Stdout)
		}
	}
	ev := p.StartEvents(t)
	id := mustRun(t, p)
	evs := ev.Stop()

	// proxy kept running: no stop, no die.
	for _, e := range Lifecycle(evs, "stop", "die", "kill") {
		if strings.HasPrefix(e, "proxy ") {
			t.Errorf("proxy (stop: false) got %q", e)
		}
	}
	if !Before(evs, "db", "stop", "db", "start") {
		t.Errorf("db not stopped and started: %v", Lifecycle(evs))
	}
	files := archiveFiles(t, p, id, p.Volume("dbdata"))
	if got := files["dump.sql"]; got != "dumped-7\n" {
		t.Errorf("pre hook dump in the backup = %q, want dumped-7", got)
	}
	if got := files["pre_stop.marker"]; got != "stopped by autobackup\n" {
		t.Errorf("compose pre_stop marker in the backup = %q", got)
	}
	m, _, err := archive.Open(filepath.Join(p.Dir, "backups"), p.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	var vols []string
	for _, v := range m.Volumes {
		vols = append(vols, v.Name)
	}
	if !slices.Equal(vols, []string{p.Volume("dbdata")}) {
		t.Errorf("backed-up volumes %v, want only dbdata (cache and scratch skipped)", vols)
	}
	// post hook and compose post_start ran after the restart.
	out := p.Compose(t, "exec", "-T", "db", "sh", "-c", "ls /data")
	if strings.Contains(out, "dump.sql") || !strings.Contains(out, "post-ran") || !strings.Contains(out, "post_start.marker") {
		t.Errorf("after the run /data has:\n%s\nwant post-ran and post_start.marker, and no dump.sql", out)
	}
	wantAllUp(t, p, "db", "proxy")

	// --if-enabled: scheduled backups are off by default, so nothing runs.
	ev = p.StartEvents(t)
	if r := p.Autobackup(t, "run", "--if-enabled"); r.Code != 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "disabled") {
		t.Errorf("run --if-enabled while disabled: %v", r)
	}
	if got := Lifecycle(ev.Stop(), "stop", "die"); len(got) != 0 {
		t.Errorf("run --if-enabled while disabled touched containers: %v", got)
	}

	// --if-older-than: a recent successful backup is enough.
	r := p.Autobackup(t, "run", "--if-older-than", "1h")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Errorf("run --if-older-than 1h: want exit 0 and the last ID %s: %v", id, r)
	}
}

func TestPreHookFailureStopsNothing(t *testing.T) {
	p := NewProject(t)
	// Same fixture, but the pre hook fails.
	compose := filepath.Join(p.Dir, "compose.yaml")
	b, err := os.ReadFile(compose)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), `pre: ["sh", "-c", "echo dumped`, `pre: ["sh", "-c", "echo pg_dump: connection refused >&2; exit 4; echo dumped`, 1)
	if broken == string(b) {
		t.Fatal("fixture changed: could not break the pre hook")
	}
	if err := os.WriteFile(compose, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Compose(t, "up", "-d", "--wait")
	ev := p.StartEvents(t)
	r := p.Autobackup(t, "run")
	evs := ev.Stop()
	if r.Code != 1 || !strings.Contains(r.Stderr, "pre hook of db exited with code 4") || !strings.Contains(r.Stderr, "connection refused") {
		t.Fatalf("run with a failing pre hook: %v", r)
	}
	if got := Lifecycle(evs, "stop", "die", "kill"); len(got) != 0 {
		t.Errorf("containers stopped despite the failed pre hook: %v", got)
	}
	if left, _ := filepath.Glob(filepath.Join(p.Dir, "backups", "*")); len(left) != 0 {
		t.Errorf("backup directory has %v", left)
	}
}
