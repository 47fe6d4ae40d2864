package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	want := []string{"enabled", "schedule", "retention_days", "keep_min", "keep_last", "keep_hourly", "keep_daily",
		"keep_weekly", "keep_monthly", "keep_yearly", "keep_tagged", "prune_guard", "directory", "stop_timeout", "start_timeout",
		"health_timeout", "poll_interval", "compression_level", "snapshot", "catch_up", "lock_timeout",
		"notify", "notify_on", "notify_timeout", "ping_url", "metrics_file"}
	if got := Keys(); !reflect.DeepEqual(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	want := Resolved{
		Enabled: false, Schedule: "0 2 * * *", RetentionDays: 7, KeepMin: 3, PruneGuard: 0.5, Directory: "./backups",
		StopTimeout: 30 * time.Second, StartTimeout: 60 * time.Second, HealthTimeout: 180 * time.Second,
		PollInterval: 2 * time.Second, LockTimeout: 0, CompressionLevel: 2, Snapshot: "auto", CatchUp: false,
		Notify: []string{}, NotifyOn: "failure", NotifyTimeout: 10 * time.Second,
	}
	if got := Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
}

func TestSet(t *testing.T) {
	projectDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(projectDir, "afile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(projectDir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, value string
		want       Settings // when wantErr is empty
		wantErr    string   // substring
	}{
		{key: "enabled", value: "true", want: Settings{Enabled: ptr(true)}},
		{key: "enabled", value: "off", want: Settings{Enabled: ptr(false)}},
		{key: "enabled", value: "nonsense", wantErr: `enabled "nonsense": want true or false; example: docker autobackup config set enabled true`},
		{key: "schedule", value: "0 2 * * *", want: Settings{Schedule: ptr("0 2 * * *")}},
		{key: "schedule", value: "@every 6h", want: Settings{Schedule: ptr("@every 6h")}},
		{key: "schedule", value: "0 0 2 * * *", wantErr: `schedule "0 0 2 * * *": want 5 fields (minute hour day month weekday) or a descriptor like @daily, got 6; example: docker autobackup config set schedule '0 2 * * *'`},
		{key: "schedule", value: "nonsense", wantErr: `schedule "nonsense": want 5 fields`},
		{key: "retention_days", value: "30", want: Settings{RetentionDays: ptr(30)}},
		{key: "retention_days", value: "-1", wantErr: `retention_days "-1": want a whole number of days from 0 (off) to 36500; example: docker autobackup config set retention_days 14`},
		{key: "retention_days", value: "0", want: Settings{RetentionDays: ptr(0)}},
		{key: "retention_days", value: "7d", wantErr: "want a whole number of days"},
		{key: "keep_min", value: "1", want: Settings{KeepMin: ptr(1)}},
		{key: "keep_min", value: "0", wantErr: `keep_min "0": want a whole number of at least 1`},
		{key: "keep_daily", value: "7", want: Settings{KeepDaily: ptr(7)}},
		{key: "Keep-Weekly", value: "4", want: Settings{KeepWeekly: ptr(4)}},
		{key: "keep_yearly", value: "0", want: Settings{KeepYearly: ptr(0)}},
		{key: "keep_tagged", value: "-2", wantErr: `keep_tagged "-2": want a whole number of 0 (off) or more; example: docker autobackup config set keep_tagged 5`},
		{key: "keep_last", value: "1.5", wantErr: "want a whole number"},
		{key: "prune_guard", value: "0.5", want: Settings{PruneGuard: ptr(0.5)}},
		{key: "prune_guard", value: "0", want: Settings{PruneGuard: ptr(0.0)}},
		{key: "prune_guard", value: "1.5", wantErr: `prune_guard "1.5": want a fraction from 0 (off) to 1, like 0.5; example: docker autobackup config set prune_guard 0.5`},
		{key: "prune_guard", value: "half", wantErr: "want a fraction"},
		{key: "directory", value: "/srv/backups", want: Settings{Directory: ptr("/srv/backups")}},
		{key: "directory", value: "adir", want: Settings{Directory: ptr("adir")}},
		{key: "directory", value: "not-yet-there", want: Settings{Directory: ptr("not-yet-there")}},
		{key: "directory", value: "afile", wantErr: `directory "afile": ` + filepath.Join(projectDir, "afile") + " exists and is not a directory"},
		{key: "directory", value: "", wantErr: "want a directory path"},
		{key: "stop_timeout", value: "0s", want: Settings{StopTimeout: ptr(Duration(0))}},
		{key: "stop_timeout", value: "45s", want: Settings{StopTimeout: ptr(Duration(45 * time.Second))}},
		{key: "stop_timeout", value: "30", wantErr: `stop_timeout "30": want a duration with a unit, like 30s, 5m or 1h30m; example: docker autobackup config set stop_timeout 30s`},
		{key: "stop_timeout", value: "-1s", wantErr: "want a duration of 0 or more"},
		{key: "start_timeout", value: "2m", want: Settings{StartTimeout: ptr(Duration(2 * time.Minute))}},
		{key: "start_timeout", value: "0s", wantErr: "greater than 0"},
		{key: "health_timeout", value: "5m", want: Settings{HealthTimeout: ptr(Duration(5 * time.Minute))}},
		{key: "health_timeout", value: "soon", wantErr: "want a duration"},
		{key: "poll_interval", value: "500ms", want: Settings{PollInterval: ptr(Duration(500 * time.Millisecond))}},
		{key: "poll_interval", value: "0", wantErr: "greater than 0"},
		{key: "compression_level", value: "4", want: Settings{CompressionLevel: ptr(4)}},
		{key: "compression_level", value: "5", wantErr: `compression_level "5": want 1 (fastest), 2 (default), 3 (better) or 4 (best)`},
		{key: "snapshot", value: "staged", want: Settings{Snapshot: ptr("staged")}},
		{key: "snapshot", value: "stream", want: Settings{Snapshot: ptr("stream")}},
		{key: "snapshot", value: "fast", wantErr: `snapshot "fast": want auto, staged or stream; example: docker autobackup config set snapshot auto`},
		{key: "catch_up", value: "yes", want: Settings{CatchUp: ptr(true)}},
		{key: "catch_up", value: "2", wantErr: "want true or false"},
		{key: "lock_timeout", value: "5m", want: Settings{LockTimeout: ptr(Duration(5 * time.Minute))}},
		{key: "lock_timeout", value: "forever", wantErr: "want a duration"},
		{key: "Lock-Timeout", value: "1m", want: Settings{LockTimeout: ptr(Duration(time.Minute))}},
		{key: "retention", value: "3", wantErr: `unknown setting "retention"; valid settings: enabled, schedule, retention_days, keep_min, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_tagged, prune_guard, directory, stop_timeout, start_timeout, health_timeout, poll_interval, compression_level, snapshot, catch_up, lock_timeout`},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			// Start from a fully set layer so that "unchanged on error" is
			// meaningful for every key.
			before := defaultSettings()
			s := defaultSettings()
			err := s.Set(tt.key, tt.value, projectDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set error = %v, want one containing %q", err, tt.wantErr)
				}
				if !reflect.DeepEqual(s, before) {
					t.Errorf("failed Set changed the settings")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got Settings
			if err := got.Set(tt.key, tt.value, projectDir); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Set(%q, %q) = %+v, want %+v", tt.key, tt.value, got, tt.want)
			}
		})
	}
}

func TestUnset(t *testing.T) {
	for _, key := range Keys() {
		s := defaultSettings()
		if err := s.Unset(key); err != nil {
			t.Fatalf("Unset(%q): %v", key, err)
		}
		d := s.Describe(Settings{})
		for _, st := range d {
			wantSource := SourceFile
			if st.Key == key {
				wantSource = SourceDefault
			}
			if st.Source != wantSource {
				t.Errorf("after Unset(%q), %s comes from %s, want %s", key, st.Key, st.Source, wantSource)
			}
		}
		// Unsetting again is fine.
		if err := s.Unset(key); err != nil {
			t.Errorf("second Unset(%q): %v", key, err)
		}
	}
	var s Settings
	if err := s.Unset("nope"); err == nil || !strings.Contains(err.Error(), "valid settings: enabled,") {
		t.Errorf("Unset of an unknown key = %v, want an error listing the keys", err)
	}
}

func TestDescribe(t *testing.T) {
	var file, compose Settings
	mustSet(t, &file, "schedule", "@hourly")
	mustSet(t, &file, "stop_timeout", "2m")
	mustSet(t, &compose, "schedule", "0 3 * * *")
	mustSet(t, &compose, "retention_days", "30")
	mustSet(t, &compose, "enabled", "true")
	got := file.Describe(compose)
	want := []struct{ key, value, source string }{
		{"enabled", "true", SourceCompose},
		{"schedule", "@hourly", SourceFile},
		{"retention_days", "30", SourceCompose},
		{"keep_min", "3", SourceDefault},
		{"keep_last", "0", SourceDefault},
		{"keep_hourly", "0", SourceDefault},
		{"keep_daily", "0", SourceDefault},
		{"keep_weekly", "0", SourceDefault},
		{"keep_monthly", "0", SourceDefault},
		{"keep_yearly", "0", SourceDefault},
		{"keep_tagged", "0", SourceDefault},
		{"prune_guard", "0.5", SourceDefault},
		{"directory", "./backups", SourceDefault},
		{"stop_timeout", "2m", SourceFile},
		{"start_timeout", "1m", SourceDefault},
		{"health_timeout", "3m", SourceDefault},
		{"poll_interval", "2s", SourceDefault},
		{"compression_level", "2", SourceDefault},
		{"snapshot", "auto", SourceDefault},
		{"catch_up", "false", SourceDefault},
		{"lock_timeout", "0s", SourceDefault},
		{"notify", "", SourceDefault},
		{"notify_on", "failure", SourceDefault},
		{"notify_timeout", "10s", SourceDefault},
		{"ping_url", "", SourceDefault},
		{"metrics_file", "", SourceDefault},
	}
	if len(got) != len(want) {
		t.Fatalf("Describe returned %d settings, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Key != w.key || g.Value != w.value || g.Source != w.source {
			t.Errorf("setting %d = %s=%q (%s), want %s=%q (%s)", i, g.Key, g.Value, g.Source, w.key, w.value, w.source)
		}
		if g.Help == "" || g.Example == "" {
			t.Errorf("%s has no help or example", g.Key)
		}
		// Every value Describe shows, and every example, is accepted by Set.
		var s Settings
		if err := s.Set(g.Key, g.Value, ""); err != nil {
			t.Errorf("Set(%s, described value): %v", g.Key, err)
		}
		if err := s.Set(g.Key, g.Example, ""); err != nil {
			t.Errorf("Set(%s, example): %v", g.Key, err)
		}
	}
}

func mustSet(t *testing.T, s *Settings, key, value string) {
	t.Helper()
	if err := s.Set(key, value, ""); err != nil {
		t.Fatal(err)
	}
}

func TestResolvePrecedence(t *testing.T) {
	var file, compose Settings
	mustSet(t, &file, "retention_days", "10")
	mustSet(t, &file, "enabled", "false")
	mustSet(t, &compose, "retention_days", "20")
	mustSet(t, &compose, "enabled", "true")
	mustSet(t, &compose, "keep_min", "9")
	mustSet(t, &compose, "lock_timeout", "1m")
	tests := []struct {
		name          string
		file, compose Settings
		want          func(r *Resolved)
	}{
		{"defaults", Settings{}, Settings{}, func(r *Resolved) {}},
		{"compose over default", Settings{}, compose, func(r *Resolved) {
			r.RetentionDays, r.Enabled, r.KeepMin, r.LockTimeout = 20, true, 9, time.Minute
		}},
		{"file over compose", file, compose, func(r *Resolved) {
			r.RetentionDays, r.Enabled, r.KeepMin, r.LockTimeout = 10, false, 9, time.Minute
		}},
		{"file over default", file, Settings{}, func(r *Resolved) { r.RetentionDays = 10 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Defaults()
			tt.want(&want)
			if got := tt.file.Resolve(tt.compose); !reflect.DeepEqual(got, want) {
				t.Errorf("Resolve =\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestBackupDir(t *testing.T) {
	tests := []struct{ dir, project, want string }{
		{"./backups", "/srv/shop", "/srv/shop/backups"},
		{"../b", "/srv/shop", "/srv/b"},
		{"/var/backups/", "/srv/shop", "/var/backups"},
	}
	for _, tt := range tests {
		if got := (Resolved{Directory: tt.dir}).BackupDir(tt.project); got != tt.want {
			t.Errorf("BackupDir(%q, %q) = %q, want %q", tt.dir, tt.project, got, tt.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{5 * time.Minute, "5m"},
		{90 * time.Second, "1m30s"},
		{2 * time.Hour, "2h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		b, err := Duration(tt.d).MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != tt.want {
			t.Errorf("MarshalText(%v) = %q, want %q", tt.d, got, tt.want)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || time.Duration(back) != tt.d {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, time.Duration(back), err, tt.d)
		}
	}
}

func TestSettingsFromMap(t *testing.T) {
	got, err := SettingsFromMap(map[string]any{
		"enabled": true, "retention_days": 14, "keep_min": float64(2), "schedule": "@daily", "stop_timeout": "1m",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{Enabled: ptr(true), RetentionDays: ptr(14), KeepMin: ptr(2), Schedule: ptr("@daily"), StopTimeout: ptr(Duration(time.Minute))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SettingsFromMap = %+v, want %+v", got, want)
	}
	_, err = SettingsFromMap(map[string]any{"retention_days": 1.5, "snapshot": "x", "colour": "red", "enabled": []any{}}, "")
	for _, sub := range []string{"retention_days: 1.5: want a whole number", `snapshot "x"`, `unknown setting "colour"`, "enabled: want a string, boolean or number, got a list"} {
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("SettingsFromMap error = %v, want one containing %q", err, sub)
		}
	}
}

// retention_days keeps its default of 7 until a keep_* count rule is set in
// some layer; keep_tagged alone does not turn it off, nor does a rule set to
// 0, and an explicit retention_days always wins.
func TestRetentionDaysDefault(t *testing.T) {
	set := func(kv ...string) Settings {
		var s Settings
		for i := 0; i < len(kv); i += 2 {
			mustSet(t, &s, kv[i], kv[i+1])
		}
		return s
	}
	tests := []struct {
		name          string
		file, compose Settings
		want          int
	}{
		{"nothing set", Settings{}, Settings{}, 7},
		{"keep_daily in the file", set("keep_daily", "7"), Settings{}, 0},
		{"keep_weekly in the compose file", Settings{}, set("keep_weekly", "4"), 0},
		{"keep_tagged only", set("keep_tagged", "5"), Settings{}, 7},
		{"a rule set to 0", set("keep_last", "0"), Settings{}, 7},
		{"the file turns the compose rule off", set("keep_daily", "0"), set("keep_daily", "7"), 7},
		{"explicit retention_days with a rule", set("keep_daily", "7", "retention_days", "3"), Settings{}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.file.Resolve(tt.compose).RetentionDays; got != tt.want {
				t.Errorf("RetentionDays = %d, want %d", got, tt.want)
			}
			for _, d := range tt.file.Describe(tt.compose) {
				if d.Key == "retention_days" && d.Value != strconv.Itoa(tt.want) {
					t.Errorf("Describe shows retention_days = %s, want %d", d.Value, tt.want)
				}
			}
		})
	}
}

// prune_guard is a fraction in the file as in the compose file; a whole
// number is accepted as TOML writes it (prune_guard = 0).
func TestPruneGuardRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte("[settings]\nprune_guard = 0\nkeep_daily = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Settings.PruneGuard == nil || *f.Settings.PruneGuard != 0 {
		t.Fatalf("prune_guard = %v, want 0", f.Settings.PruneGuard)
	}
	mustSet(t, &f.Settings, "prune_guard", "0.25")
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "prune_guard = 0.25\n") {
		t.Errorf("saved file:\n%s", data)
	}
	if err := os.WriteFile(path, []byte("[settings]\nprune_guard = 2.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "prune_guard = 2: want a fraction from 0 (off) to 1, like 0.5; example: prune_guard = 0.5") {
		t.Errorf("Load of prune_guard = 2.0: %v", err)
	}
	s, err := SettingsFromMap(map[string]any{"prune_guard": 0.75, "keep_daily": float64(7)}, "")
	if err != nil || *s.PruneGuard != 0.75 || *s.KeepDaily != 7 {
		t.Errorf("SettingsFromMap: %+v, %v", s, err)
	}
}
