package plugin

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

func commitTagged(t *testing.T, dir, project, id, tag string, started time.Time) {
	t.Helper()
	p, err := archive.Begin(dir, id, project)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(&archive.Manifest{Project: project, Tag: tag, Mode: archive.ModeStream, Started: started, Finished: started}); err != nil {
		t.Fatal(err)
	}
}

// TestPickBackup: a unique ID prefix or --tag picks a backup, like restic;
// ambiguous or unknown ones are usage errors that say why.
func TestPickBackup(t *testing.T) {
	g := testProject(t, "")
	env, err := loadProject(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(g.ProjectDir, "backups")
	t0 := time.Date(2026, 12, 1, 8, 19, 52, 0, time.UTC)
	commitTagged(t, dir, "shop", "20261201-081952-aaaa", "pre-upgrade", t0)
	commitTagged(t, dir, "shop", "20261201-091000-bbbb", "pre-upgrade", t0.Add(time.Hour))
	commitTagged(t, dir, "shop", "20261201-091000-cccc", "", t0.Add(2*time.Hour))
	commitTagged(t, dir, "other", "20261130-000000-dddd", "pre-upgrade", t0.Add(3*time.Hour))

	for _, tc := range []struct{ arg, want, err string }{
		{"20261201-0819", "20261201-081952-aaaa", ""},
		{"20261201-081952", "20261201-081952-aaaa", ""},
		{"tag:pre-upgrade", "20261201-091000-bbbb", ""},
		{"20261201-0910", "", "several backups"},
		{"20261130", "", "neither a backup ID"}, // another project's: not seen
		{"pre-upgrade", "", "--tag pre-upgrade"},
		{"tag:nope", "", `tagged "nope"`},
	} {
		m, _, err := resolveBackup(env, "shop", tc.arg)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errUsage) {
				t.Errorf("%s: error %v, want a usage error mentioning %q", tc.arg, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.arg, err)
		case m.ID != tc.want:
			t.Errorf("%s picked %s, want %s", tc.arg, m.ID, tc.want)
		}
	}
}

// TestListAfterDirectoryChange: backups left in the old folder are shown
// as complete and elsewhere, with where they are, not as broken.
func TestListAfterDirectoryChange(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	id := commitBackup(t, g, time.Now().Add(-time.Hour), "success")
	var out strings.Builder
	if err := runConfigSet(ctx, &out, g, "directory", "./elsewhere"); err != nil {
		t.Fatal(err)
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	list, err := listBackups(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].Status != "elsewhere" || !strings.Contains(list[0].Error, "backups") || !strings.Contains(list[0].Error, "elsewhere") {
		t.Errorf("list after the directory changed: %+v", list)
	}
}

// TestBackupNotFoundMessage: a missing backup is said once, with the
// folder as the user named it, and the exit code and hint of a usage error.
func TestBackupNotFoundMessage(t *testing.T) {
	g := testProject(t, "")
	env, err := loadProject(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, want string }{
		{"20261201-000000-abcd", "autobackup: backup 20261201-000000-abcd of project shop is not in backups\nTry: docker autobackup list"},
		{archive.Latest, "autobackup: no backup of project shop in backups\nTry: docker autobackup list"},
	} {
		_, _, err := resolveBackup(env, "shop", tc.id)
		code, msg := classify(err)
		if code != ExitUsage || msg != tc.want {
			t.Errorf("%s: exit %d, message %q; want exit %d, %q", tc.id, code, msg, ExitUsage, tc.want)
		}
	}
}
