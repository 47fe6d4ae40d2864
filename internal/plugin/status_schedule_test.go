package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// TestStatusSeesNothingSchedules: enabled without a scheduler is not "All
// good": status says no backup will happen, and shows no next run.
func TestStatusSeesNothingSchedules(t *testing.T) {
	g := testProject(t, "")
	if err := state.Update(stateFile(g), func(f *state.File) error {
		f.RecordBackup(state.Backup{ID: "20261201-010000-aaaa", Started: time.Now(), Finished: time.Now(), Status: state.StatusSuccess})
		return f.Settings.Set("enabled", "true", g.ProjectDir)
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		by, want, notWant string
	}{
		{"", "NOTHING RUNS THE SCHEDULE", "All good"},
		{"crontab", "All good", "NOTHING RUNS"},
	} {
		withScheduler(t, tc.by)
		env, err := loadProject(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		r := buildStatus(env, 5, time.Now())
		var out bytes.Buffer
		if err := printStatus(&out, r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), tc.notWant) {
			t.Errorf("scheduled by %q: status\n%s\nwant %q, not %q", tc.by, out.String(), tc.want, tc.notWant)
		}
		if (tc.by == "") != (r.NextRun == nil) {
			t.Errorf("scheduled by %q: next run %v", tc.by, r.NextRun)
		}
	}
}

func TestStatusShowsRestores(t *testing.T) {
	g := testProject(t, "")
	if err := state.Update(stateFile(g), func(f *state.File) error {
		f.RecordRestore(state.Restore{ID: "20261201-100000-aaaa", BackupID: "20261201-090000-bbbb", Started: time.Now(), Finished: time.Now(), Volumes: []string{"shop_dbdata"}, Status: state.StatusSuccess})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	env, err := loadProject(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printStatus(&out, buildStatus(env, 5, time.Now())); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Recent restores:") || !strings.Contains(out.String(), "from 20261201-090000-bbbb") {
		t.Errorf("status does not show the restore:\n%s", out.String())
	}
}
