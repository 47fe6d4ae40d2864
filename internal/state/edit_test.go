package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const commented = `# Our backup policy: see the runbook.

[settings]
# nightly, before the batch jobs
schedule = "0 1 * * *"   # UTC!

retention_days = 14 # two weeks
# keep more during the migration
keep_min = 3
directory = "/srv/backups"
`

// TestUpdateKeepsWhatTheUserWrote: comments, blank lines and key order in
// [settings] survive recorded runs and config changes.
func TestUpdateKeepsWhatTheUserWrote(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(commented), 0o600); err != nil {
		t.Fatal(err)
	}
	record := func(id string) {
		t.Helper()
		err := Update(path, func(f *File) error {
			f.RecordBackup(Backup{ID: id, Started: time.Now(), Finished: time.Now(), Status: StatusSuccess})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	record("20261125-010000-aaaa")
	record("20261126-010000-aaab")
	if got := read(); got != commented {
		t.Errorf("runs changed the settings file:\n%s", got)
	}
	set := func(key, val string) {
		t.Helper()
		if err := Update(path, func(f *File) error { return f.Settings.Set(key, val, filepath.Dir(path)) }); err != nil {
			t.Fatal(err)
		}
	}
	set("retention_days", "30")
	set("enabled", "true")
	set("stop_timeout", "45s")
	if err := Update(path, func(f *File) error { return f.Settings.Unset("keep_min") }); err != nil {
		t.Fatal(err)
	}
	want := `# Our backup policy: see the runbook.

[settings]
# nightly, before the batch jobs
schedule = "0 1 * * *"   # UTC!

retention_days = 30 # two weeks
# keep more during the migration
directory = "/srv/backups"
enabled = true
stop_timeout = "45s"
`
	if got := read(); got != want {
		t.Errorf("after config changes:\n%s\nwant:\n%s", got, want)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Backups) != 2 || f.State.LastSuccessID != "20261126-010000-aaab" {
		t.Errorf("history: %+v", f.State)
	}
}

// TestUpdateMovesOldHistory: a file of an older version holding the
// history too keeps its settings text; the history moves to its own file.
func TestUpdateMovesOldHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	old := commented + `
[state]
last_backup_id = "20261120-010000-aaaa"
last_backup_time = 2026-11-20T01:00:00Z
last_backup_status = "success"

[[backups]]
id = "20261120-010000-aaaa"
started = 2026-11-20T01:00:00Z
finished = 2026-11-20T01:00:05Z
status = "success"
duration_seconds = 5.0
downtime_seconds = 1.0
volumes = ["shop_data"]
path = "backups/20261120-010000-aaaa"
size_bytes = 10
`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, func(f *File) error {
		f.RecordBackup(Backup{ID: "20261121-010000-aaab", Started: time.Now(), Finished: time.Now(), Status: StatusFailed})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if got := strings.TrimRight(string(data), "\n"); got != strings.TrimRight(commented, "\n") {
		t.Errorf("settings file after the move:\n%s", data)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Backups) != 2 || f.State.LastBackupStatus != StatusFailed || f.Settings.KeepMin == nil || *f.Settings.KeepMin != 3 {
		t.Errorf("after the move: %+v", f)
	}
}

// TestConcurrentUpdatesLoseNothing: a run recording itself while settings
// change (as `config set` during a backup does) loses neither write.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(commented), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- Update(path, func(f *File) error {
				f.RecordBackup(Backup{ID: fmt.Sprintf("20261125-0100%02d-aaaa", i), Started: time.Now(), Finished: time.Now(), Status: StatusSuccess})
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			errs <- Update(path, func(f *File) error {
				return f.Settings.Set([]string{"stop_timeout", "start_timeout", "health_timeout", "poll_interval"}[i%4], fmt.Sprintf("%ds", i+1), filepath.Dir(path))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Backups) != n {
		t.Errorf("%d backups recorded, want %d", len(f.Backups), n)
	}
	for _, d := range []*Duration{f.Settings.StopTimeout, f.Settings.StartTimeout, f.Settings.HealthTimeout, f.Settings.PollInterval} {
		if d == nil {
			t.Errorf("a setting was lost: %+v", f.Settings)
		}
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "# nightly, before the batch jobs") {
		t.Errorf("comments lost:\n%s", data)
	}
}

// TestEditTableLayouts: values spanning lines, trailing comments, no final
// newline, missing table.
func TestEditTableLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		have     map[string]string
		want     map[string]string
		wantText string
	}{
		{"no final newline", "[settings]\nkeep_min = 2", map[string]string{"keep_min": "2"}, map[string]string{"keep_min": "2", "enabled": "true"}, "[settings]\nkeep_min = 2\nenabled = true\n"},
		{"no table", "# hello\n", nil, map[string]string{"enabled": "false"}, "# hello\n\n[settings]\nenabled = false\n"},
		{"empty table", "[settings]\n\n[other]\nx = 1\n", nil, map[string]string{"enabled": "true"}, "[settings]\nenabled = true\n\n[other]\nx = 1\n"},
		{"multi-line array", "[settings]\nnotify = [\n  \"a\", # first\n  \"b]\",\n] # urls\nkeep_min = 1\n", map[string]string{"notify": `["a", "b]"]`, "keep_min": "1"}, map[string]string{"notify": `["c"]`, "keep_min": "1"}, "[settings]\nnotify = [\"c\"] # urls\nkeep_min = 1\n"},
		{"delete multi-line", "[settings]\nnotify = [\n  \"a\",\n]\nkeep_min = 1\n", map[string]string{"notify": `["a"]`, "keep_min": "1"}, map[string]string{"keep_min": "1"}, "[settings]\nkeep_min = 1\n"},
		{"string with hash", "[settings]\nschedule = \"0 # 2\" # c\n", map[string]string{"schedule": `"0 # 2"`}, map[string]string{"schedule": `"@daily"`}, "[settings]\nschedule = \"@daily\" # c\n"},
		{"other table same key", "[other]\nkeep_min = 9\n[settings]\nkeep_min = 1\n", map[string]string{"keep_min": "1"}, map[string]string{"keep_min": "2"}, "[other]\nkeep_min = 9\n[settings]\nkeep_min = 2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(editTable([]byte(tc.in), "settings", tc.have, tc.want))
			if got != tc.wantText {
				t.Errorf("got:\n%q\nwant:\n%q", got, tc.wantText)
			}
		})
	}
}
