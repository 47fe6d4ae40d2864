package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestScheduledEntryLog: the crontab entry schedule install writes, run by
// a shell as cron runs it, backs up the project and leaves lines in
// backups/autobackup.log that say when: every line starts with the time.
// Installing while disabled says that the entry does nothing until enable.
func TestScheduledEntryLog(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	crontab := filepath.Join(t.TempDir(), "crontab")

	r := p.Autobackup(t, "schedule", "install", "--crontab-file", crontab)
	if r.Code != 0 || !strings.Contains(r.Stdout, "this entry does nothing until you run: docker autobackup enable") || strings.Contains(r.Stdout, "Next run") {
		t.Errorf("install while disabled: %v", r)
	}
	configure(t, p, "enabled", "true")
	data, err := os.ReadFile(crontab)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 6 {
		t.Fatalf("crontab entry: %q", lines[len(lines)-1])
	}
	// cron hands everything after the five time fields to sh, with \% as %.
	job := strings.ReplaceAll(strings.Join(fields[5:], " "), `\%`, "%")
	for range 2 {
		if r := run(t, t.TempDir(), "sh", "-c", job); r.Code != 0 {
			t.Fatalf("the entry's command: %v", r)
		}
	}
	log, err := os.ReadFile(filepath.Join(p.Dir, "backups", "autobackup.log"))
	if err != nil {
		t.Fatal(err)
	}
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) \S`)
	ids := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(log), "\n"), "\n") {
		if !stamped.MatchString(l) {
			t.Errorf("log line without a time: %q", l)
		}
		if f := strings.Fields(l); len(f) == 2 && idPattern.MatchString(f[1]) {
			ids++
		}
	}
	if ids != 2 {
		t.Errorf("log holds %d backup IDs, want 2:\n%s", ids, log)
	}
	wantAllUp(t, p, "db")
}
