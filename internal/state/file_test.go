package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// writeState writes content as autobackup.toml in a new directory.
func writeState(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const validFile = `# a comment the user wrote
[settings]
enabled = true
schedule = "30 3 * * 1-5"
retention_days = 14
stop_timeout = "1m"

[state]
last_backup_id = "20261125-231500-a1b2"
last_backup_time = 2026-11-25T23:15:00Z
last_backup_status = "success"

[[backups]]
id = "20261125-231500-a1b2"
tag = "pre-upgrade"
started = 2026-11-25T23:15:00Z
finished = 2026-11-25T23:15:12Z
status = "success"
duration_seconds = 12.3
downtime_seconds = 2.1
volumes = ["shop_dbdata", "shop_uploads"]
path = "backups/20261125-231500-a1b2"
size_bytes = 123

[[restores]]
id = "r1"
backup_id = "20261125-231500-a1b2"
started = 2026-11-26T08:00:00Z
finished = 2026-11-26T08:01:00Z
volumes = ["shop_dbdata"]
status = "failed"
error = "disk full"

[[prunes]]
time = 2026-11-27T02:00:00Z
deleted = ["20261118-020000-ffff"]
reason = "older than 14 days"
`

func TestLoadValid(t *testing.T) {
	got, err := Load(writeState(t, validFile))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Settings: Settings{Enabled: ptr(true), Schedule: ptr("30 3 * * 1-5"), RetentionDays: ptr(14), StopTimeout: ptr(Duration(time.Minute))},
		State:    Summary{LastBackupID: "20261125-231500-a1b2", LastBackupTime: mustTime(t, "2026-11-25T23:15:00Z"), LastBackupStatus: "success"},
		Backups: []Backup{{
			ID: "20261125-231500-a1b2", Tag: "pre-upgrade",
			Started: mustTime(t, "2026-11-25T23:15:00Z"), Finished: mustTime(t, "2026-11-25T23:15:12Z"),
			Status: "success", DurationSeconds: 12.3, DowntimeSeconds: 2.1,
			Volumes: []string{"shop_dbdata", "shop_uploads"}, Path: "backups/20261125-231500-a1b2", SizeBytes: 123,
		}},
		Restores: []Restore{{
			ID: "r1", BackupID: "20261125-231500-a1b2",
			Started: mustTime(t, "2026-11-26T08:00:00Z"), Finished: mustTime(t, "2026-11-26T08:01:00Z"),
			Volumes: []string{"shop_dbdata"}, Status: "failed", Error: "disk full",
		}},
		Prunes: []Prune{{Time: mustTime(t, "2026-11-27T02:00:00Z"), Deleted: []string{"20261118-020000-ffff"}, Reason: "older than 14 days"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadMissing(t *testing.T) {
	got, err := Load(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&File{}); !reflect.DeepEqual(got, want) {
		t.Errorf("Load of a missing file = %+v, want %+v", got, want)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantLine int
		wantKey  string
		wantMsg  string // substring of Error()
	}{
		{"syntax", "[settings]\nenabled = true\nschedule \"0 2 * * *\"\n", 3, "", `expected '.' or '='`},
		{"syntax late", "[settings]\nenabled = true\n\n\n\n\n[state\n", 7, "", "line 7: "},
		{"duplicate key", "[settings]\nenabled = true\nenabled = false\n", 3, "", "enabled"},
		{"unknown setting", "[settings]\nenabled = true\nretention = 3\n", 3, "settings.retention", `unknown setting "retention"; valid settings: enabled, schedule,`},
		{"unknown table", "[settings]\nenabled = true\n\n[extra]\nx = 1\n", 4, "extra", "unknown key extra"},
		{"unknown backup key", "[[backups]]\nid = \"a\"\nstatus = \"success\"\ncolor = \"red\"\n", 4, "backups.color", "unknown key backups.color"},
		{"six-field cron", "[settings]\nschedule = \"0 0 2 * * *\"\n", 2, "settings.schedule", `schedule = "0 0 2 * * *": want 5 fields (minute hour day month weekday) or a descriptor like @daily, got 6; example: schedule = "0 2 * * *"`},
		{"bad cron value", "[settings]\nschedule = \"61 2 * * *\"\n", 2, "settings.schedule", `the minute field "61" is not valid: it takes 0-59`},
		{"negative days", "[settings]\nretention_days = -1\n", 2, "settings.retention_days", "retention_days = -1: want a whole number of days"},
		{"zero keep_min", "\n[settings]\n  keep_min = 0 # none\n", 3, "settings.keep_min", "keep_min = 0"},
		{"duration without unit", "[settings]\nstop_timeout = \"30\"\n", 2, "settings.stop_timeout", `stop_timeout = "30": want a duration with a unit`},
		{"duration as integer", "[settings]\nhealth_timeout = 30\n", 2, "settings.health_timeout", `health_timeout = "30": want a duration`},
		{"negative duration", "[settings]\nlock_timeout = \"-5s\"\n", 2, "settings.lock_timeout", "want a duration of 0 or more"},
		{"zero poll interval", "[settings]\npoll_interval = \"0s\"\n", 2, "settings.poll_interval", "greater than 0"},
		{"snapshot mode", "[settings]\nsnapshot = \"fast\"\n", 2, "settings.snapshot", `snapshot = "fast": want auto, staged or stream`},
		{"compression level", "[settings]\ncompression_level = 5\n", 2, "settings.compression_level", "want 1 (fastest)"},
		{"wrong type", "[settings]\nenabled = \"yes\"\n", 2, "settings.enabled", "enabled: want a boolean, not a string; example: enabled = true"},
		{"empty directory", "[settings]\ndirectory = \"\"\n", 2, "settings.directory", "want a directory path"},
		{"backup status in second table", "[[backups]]\nid = \"a\"\nstatus = \"success\"\n\n[[backups]]\nid = \"b\"\nstatus = \"done\"\n", 7, "backups.status", `status = "done": want "success", "failed" or "interrupted"`},
		{"negative size", "[[backups]]\nid = \"a\"\nstatus = \"success\"\nsize_bytes = -4\n", 4, "backups.size_bytes", "want a number of 0 or more"},
		{"nan duration", "[[backups]]\nid = \"a\"\nstatus = \"success\"\nduration_seconds = nan\n", 4, "backups.duration_seconds", "want a number of 0 or more"},
		{"restore status", "[[restores]]\nid = \"r\"\nstatus = \"\"\n", 3, "restores.status", "status = \"\""},
		{"summary status", "[state]\nlast_backup_status = \"meh\"\n", 2, "state.last_backup_status", "meh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeState(t, tt.content)
			f, err := Load(path)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Load = %+v, %v; want a *ParseError", f, err)
			}
			if got, want := pe.Line, tt.wantLine; got != want {
				t.Errorf("line = %d, want %d (%v)", got, want, err)
			}
			if got, want := pe.Key, tt.wantKey; got != want {
				t.Errorf("key = %q, want %q", got, want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not contain %q", msg, tt.wantMsg)
			}
			if !strings.HasPrefix(msg, path) || !strings.HasSuffix(msg, "; fix the file by hand (it was not changed)") {
				t.Errorf("error %q does not name the file and say what to do", msg)
			}
			data, _ := os.ReadFile(path)
			if string(data) != tt.content {
				t.Errorf("Load changed the file")
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	err := &ParseError{Path: "autobackup.toml", Line: 7, Msg: `expected "=" after key`}
	if got, want := err.Error(), `autobackup.toml line 7: expected "=" after key; fix the file by hand (it was not changed)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err.Line = 0
	if got, want := err.Error(), `autobackup.toml: expected "=" after key; fix the file by hand (it was not changed)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func sampleFile(t *testing.T) *File {
	t.Helper()
	f := &File{}
	for _, kv := range [][2]string{{"enabled", "true"}, {"schedule", "@daily"}, {"keep_min", "5"}, {"snapshot", "stream"}, {"stop_timeout", "90s"}} {
		if err := f.Settings.Set(kv[0], kv[1], ""); err != nil {
			t.Fatal(err)
		}
	}
	berlin := time.FixedZone("CET", 3600)
	f.RecordBackup(Backup{
		ID: "20261125-231500-a1b2", Tag: "pre-upgrade",
		Started: time.Date(2026, 11, 26, 0, 15, 0, 0, berlin), Finished: time.Date(2026, 11, 26, 0, 15, 12, 500, berlin),
		Status: StatusSuccess, DurationSeconds: 12.3, DowntimeSeconds: 2.1,
		Volumes: []string{"shop_dbdata"}, Path: "backups/20261125-231500-a1b2", SizeBytes: 123,
	})
	f.RecordBackup(Backup{
		ID: "20261126-020000-c3d4", Started: mustTime(t, "2026-11-26T02:00:00Z"), Finished: mustTime(t, "2026-11-26T02:00:01Z"),
		Status: StatusFailed, DurationSeconds: 1, Volumes: []string{"shop_dbdata"}, Error: "stop shop-db-1: timeout",
	})
	f.RecordRestore(Restore{ID: "r1", BackupID: "20261125-231500-a1b2", Started: mustTime(t, "2026-11-26T08:00:00Z"),
		Finished: mustTime(t, "2026-11-26T08:01:00Z"), Volumes: []string{"shop_dbdata"}, Status: StatusSuccess})
	f.RecordPrune(Prune{Time: mustTime(t, "2026-11-27T02:00:00Z"), Deleted: []string{"20261125-231500-a1b2"}, Reason: "older than 7 days"})
	return f
}

const sampleGolden = fileHeader + `[settings]
enabled = true
schedule = "@daily"
keep_min = 5
stop_timeout = "1m30s"
snapshot = "stream"

[state]
last_backup_id = "20261126-020000-c3d4"
last_backup_time = 2026-11-26T02:00:00Z
last_backup_status = "failed"
last_success_id = "20261125-231500-a1b2"
last_success_time = 2026-11-25T23:15:00Z

[[backups]]
id = "20261125-231500-a1b2"
tag = "pre-upgrade"
started = 2026-11-25T23:15:00Z
finished = 2026-11-25T23:15:12Z
status = "success"
duration_seconds = 12.3
downtime_seconds = 2.1
volumes = ["shop_dbdata"]
path = "backups/20261125-231500-a1b2"
size_bytes = 123
pruned = 2026-11-27T02:00:00Z

[[backups]]
id = "20261126-020000-c3d4"
started = 2026-11-26T02:00:00Z
finished = 2026-11-26T02:00:01Z
status = "failed"
duration_seconds = 1.0
downtime_seconds = 0.0
volumes = ["shop_dbdata"]
path = ""
size_bytes = 0
error = "stop shop-db-1: timeout"

[[restores]]
id = "r1"
backup_id = "20261125-231500-a1b2"
started = 2026-11-26T08:00:00Z
finished = 2026-11-26T08:01:00Z
volumes = ["shop_dbdata"]
status = "success"

[[prunes]]
time = 2026-11-27T02:00:00Z
deleted = ["20261125-231500-a1b2"]
reason = "older than 7 days"
`

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	want := sampleFile(t)
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := os.ReadFile(HistoryPath(path))
	if err != nil {
		t.Fatal(err)
	}
	// The settings go to one file, the history to the other.
	i := strings.Index(sampleGolden, "[state]")
	wantSettings, wantHistory := strings.TrimRight(sampleGolden[:i], "\n")+"\n", historyHeader+sampleGolden[i:]
	if got := string(data); got != wantSettings {
		t.Errorf("saved settings file:\n%s\nwant:\n%s", got, wantSettings)
	}
	if got := string(hist); got != wantHistory {
		t.Errorf("saved history file:\n%s\nwant:\n%s", got, wantHistory)
	}
	// An old file holding both still reads the same.
	old := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(old, []byte(sampleGolden), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(old); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load of a one-file (older) layout = %+v, %v", got, err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load after Save:\n got %+v\nwant %+v", got, want)
	}
	// Saving what was loaded gives the same bytes: the order is stable.
	if err := Save(path, got); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if string(again) != string(data) {
		t.Errorf("second save differs:\n%s", again)
	}
}

func TestSaveEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, &File{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if got, want := string(data), fileHeader; got != want {
		t.Errorf("empty file:\n%q\nwant\n%q", got, want)
	}
}

func TestSaveModeAndNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	// An existing file with wider permissions is replaced by a 0600 one.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := Save(path, sampleFile(t)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := names, []string{HistoryName, FileName}; !reflect.DeepEqual(got, want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
	for _, n := range names {
		if strings.HasPrefix(n, atomicfile.TempPrefix) {
			t.Errorf("temporary file %s left behind", n)
		}
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	f := &File{Settings: Settings{Schedule: ptr("every day")}}
	if err := Save(path, f); err == nil {
		t.Fatal("Save of an invalid schedule succeeded")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Save wrote a file it refused: %v", err)
	}
}

func TestUpdateNeverOverwritesBrokenFile(t *testing.T) {
	const broken = "[settings]\nenabled = tru\n"
	path := writeState(t, broken)
	called := false
	err := Update(path, func(f *File) error {
		called = true
		return nil
	})
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Update = %v, want a *ParseError", err)
	}
	if called {
		t.Error("Update called fn on a file that did not load")
	}
	data, _ := os.ReadFile(path)
	if string(data) != broken {
		t.Errorf("broken file was changed to %q", data)
	}
}

func TestUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	err := Update(path, func(f *File) error { return f.Settings.Set("enabled", "true", "") })
	if err != nil {
		t.Fatal(err)
	}
	wantErr := errors.New("no")
	if err := Update(path, func(f *File) error { f.Settings.Enabled = nil; return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("Update = %v, want %v", err, wantErr)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Settings.Enabled == nil || !*f.Settings.Enabled {
		t.Errorf("enabled = %v, want true (a failed fn must not be saved)", f.Settings.Enabled)
	}
}

func TestRecordBackupSummary(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 25, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		name    string
		backups []Backup
		want    Summary
	}{
		{"none", nil, Summary{}},
		{"success", []Backup{{ID: "a", Started: at(1), Status: StatusSuccess}},
			Summary{LastBackupID: "a", LastBackupTime: at(1), LastBackupStatus: StatusSuccess, LastSuccessID: "a", LastSuccessTime: at(1)}},
		{"success then failure", []Backup{{ID: "a", Started: at(1), Status: StatusSuccess}, {ID: "b", Started: at(2), Status: StatusFailed}},
			Summary{LastBackupID: "b", LastBackupTime: at(2), LastBackupStatus: StatusFailed, LastSuccessID: "a", LastSuccessTime: at(1)}},
		{"interrupted counts as failed", []Backup{{ID: "a", Started: at(1), Status: StatusInterrupted}},
			Summary{LastBackupID: "a", LastBackupTime: at(1), LastBackupStatus: StatusFailed}},
		{"older record does not win", []Backup{{ID: "b", Started: at(2), Status: StatusFailed}, {ID: "a", Started: at(1), Status: StatusSuccess}},
			Summary{LastBackupID: "b", LastBackupTime: at(2), LastBackupStatus: StatusFailed, LastSuccessID: "a", LastSuccessTime: at(1)}},
		{"unfinished status leaves the summary", []Backup{{ID: "a", Started: at(1), Status: StatusSuccess}, {ID: "b", Started: at(2), Status: "running"}},
			Summary{LastBackupID: "a", LastBackupTime: at(1), LastBackupStatus: StatusSuccess, LastSuccessID: "a", LastSuccessTime: at(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f File
			for _, b := range tt.backups {
				f.RecordBackup(b)
			}
			if got := f.State; got != tt.want {
				t.Errorf("summary = %+v, want %+v", got, tt.want)
			}
			if got, want := len(f.Backups), len(tt.backups); got != want {
				t.Errorf("%d records, want %d", got, want)
			}
		})
	}
}

func TestRecordTimesAreUTCSeconds(t *testing.T) {
	var f File
	local := time.Date(2026, 11, 26, 0, 15, 0, 999, time.FixedZone("CET", 3600))
	f.RecordBackup(Backup{ID: "a", Started: local, Finished: local, Status: StatusSuccess})
	f.RecordRestore(Restore{ID: "r", Started: local, Finished: local, Status: StatusSuccess})
	want := time.Date(2026, 11, 25, 23, 15, 0, 0, time.UTC)
	for _, got := range []time.Time{f.Backups[0].Started, f.Backups[0].Finished, f.Restores[0].Started, f.State.LastBackupTime} {
		if got != want {
			t.Errorf("time = %v, want %v", got, want)
		}
	}
}

func TestRecordPruneAndFindBackup(t *testing.T) {
	var f File
	f.RecordBackup(Backup{ID: "a", Status: StatusSuccess})
	f.RecordBackup(Backup{ID: "b", Status: StatusSuccess})
	when := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	f.RecordPrune(Prune{Time: when, Deleted: []string{"a", "unknown"}, Reason: "older than 7 days"})
	tests := []struct {
		id         string
		wantOK     bool
		wantPruned time.Time
	}{
		{"a", true, when},
		{"b", true, time.Time{}},
		{"unknown", false, time.Time{}},
	}
	for _, tt := range tests {
		b, ok := f.FindBackup(tt.id)
		if ok != tt.wantOK {
			t.Errorf("FindBackup(%q) ok = %v, want %v", tt.id, ok, tt.wantOK)
			continue
		}
		if ok && b.Pruned != tt.wantPruned {
			t.Errorf("FindBackup(%q).Pruned = %v, want %v", tt.id, b.Pruned, tt.wantPruned)
		}
	}
	b, _ := f.FindBackup("b")
	b.Tag = "changed"
	if got := f.Backups[1].Tag; got != "changed" {
		t.Errorf("FindBackup does not point into the file: tag = %q", got)
	}
}

func TestSaveCapsHistory(t *testing.T) {
	var f File
	// The oldest backup still exists; 10 newer ones were pruned or failed.
	f.RecordBackup(Backup{ID: "keep-oldest", Status: StatusSuccess})
	for i := range MaxHistory + 20 {
		b := Backup{ID: fmt.Sprint("b", i), Status: StatusSuccess}
		if i < 10 {
			b.Status = StatusFailed
		}
		f.RecordBackup(b)
		f.RecordRestore(Restore{ID: fmt.Sprint("r", i), Status: StatusSuccess})
		f.RecordPrune(Prune{Reason: fmt.Sprint(i)})
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, &f); err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Backups), MaxHistory+21; got != want {
		t.Errorf("Save changed its argument: %d backups, want %d", got, want)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Backups); n != MaxHistory {
		t.Fatalf("%d backups kept, want %d", n, MaxHistory)
	}
	// 21 dropped: the 10 failed ones first, then the 11 oldest others
	// (keep-oldest, b10..b19).
	if got, want := got.Backups[0].ID, "b20"; got != want {
		t.Errorf("oldest kept backup = %q, want %q", got, want)
	}
	if got, want := len(got.Restores), MaxHistory; got != want {
		t.Errorf("%d restores kept, want %d", got, want)
	}
	if got, want := got.Restores[0].ID, "r20"; got != want {
		t.Errorf("oldest kept restore = %q, want %q", got, want)
	}
	if got, want := got.Prunes[len(got.Prunes)-1].Reason, fmt.Sprint(MaxHistory+19); got != want {
		t.Errorf("newest prune = %q, want %q", got, want)
	}
}

func TestCapRecordsPrefersGone(t *testing.T) {
	recs := make([]Backup, MaxHistory+2)
	for i := range recs {
		recs[i] = Backup{ID: fmt.Sprint(i), Status: StatusSuccess}
	}
	recs[5].Status = StatusFailed
	recs[7].Pruned = time.Unix(1, 0)
	got := capRecords(recs, func(b Backup) bool { return !b.Pruned.IsZero() || b.Status != StatusSuccess })
	if len(got) != MaxHistory {
		t.Fatalf("len = %d, want %d", len(got), MaxHistory)
	}
	if got[0].ID != "0" || got[5].ID != "6" || got[6].ID != "8" {
		t.Errorf("kept %s, %s, %s; want 0, 6, 8 (5 and 7 dropped)", got[0].ID, got[5].ID, got[6].ID)
	}
}

func TestKeyLine(t *testing.T) {
	const doc = `# header
[settings]
enabled = true
"keep_min" = 3
note = """
status = "x"
"""

[[backups]]
id = "a"
status = "success"

[[ backups ]] # second
id = "b"
status = "bad"
`
	tests := []struct {
		key  []string
		nth  int
		want int
	}{
		{[]string{"settings"}, -1, 2},
		{[]string{"settings", "enabled"}, -1, 3},
		{[]string{"settings", "keep_min"}, -1, 4},
		{[]string{"backups", "status"}, -1, 11},
		{[]string{"backups", "status"}, 1, 15},
		{[]string{"backups"}, 1, 13},
		{[]string{"settings", "status"}, -1, 0},
		{[]string{"nowhere"}, -1, 0},
	}
	for _, tt := range tests {
		if got := keyLine([]byte(doc), tt.key, tt.nth); got != tt.want {
			t.Errorf("keyLine(%v, %d) = %d, want %d", tt.key, tt.nth, got, tt.want)
		}
	}
}
