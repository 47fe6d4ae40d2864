package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// TestRunNoRoomStopsNothing: when the last backup of the same volumes
// took more than the backup directory has free, the run fails in preflight,
// before anything is stopped.
func TestRunNoRoomStopsNothing(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("first Run: %v", err)
	}
	// Pretend the last backup was huge: no file system has an exabyte free.
	path := filepath.Join(o.Dir, res.ID, archive.ManifestName)
	m, err := archive.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Volumes[0].ArchiveBytes = 1 << 60
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	f.ResetCalls()
	_, err = backup.Run(t.Context(), f, o)
	wantErrIs(t, err, backup.ErrPreflight)
	wantErrContains(t, err, "not enough free space", o.Dir, "free")
	equal(t, "stops", f.Ops("stop"), []string(nil))
	equal(t, "helpers", f.Ops("create-helper"), []string(nil))
	entries, _ := archive.ListAll(o.Dir)
	if len(entries) != 1 {
		t.Errorf("backups after the refused run: %v, want only the first", entries)
	}
}

// TestRunInterruptedDuringRestartIsNotCommitted: a signal that arrives once
// the copy is done, while services come back, still aborts the run: the
// services are back, and no backup is left that the user was told did not
// happen.
func TestRunInterruptedDuringRestartIsNotCommitted(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	calls := 0
	f.ContainersFn = func(ctx context.Context, _ string) ([]engine.Container, error) {
		calls++
		if calls == 2 { // the restart's lookup, after the snapshot
			cancel(errors.New("interrupted by terminated"))
		}
		return f.DefaultContainers(ctx, "")
	}
	_, err := backup.Run(ctx, f, o)
	wantErrContains(t, err, "aborted", "interrupted by terminated")
	var restart *compose.RestartError
	if errors.As(err, &restart) {
		t.Errorf("services reported not back: %v", err)
	}
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}

// A staged run interrupted while services come back does not go on to
// archive its staging copies: nothing would be kept of it.
func TestRunStagedInterruptedDoesNotArchive(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	o.Mode = backup.ModeStaged
	rec := &progress.Recorder{}
	o.Reporter = rec
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	calls := 0
	f.ContainersFn = func(c context.Context, _ string) ([]engine.Container, error) {
		calls++
		if calls == 2 { // the restart's lookup, after the delta sync
			cancel(errors.New("interrupted by SIGINT"))
		}
		return f.DefaultContainers(context.WithoutCancel(c), "")
	}
	res, err := backup.Run(ctx, f, o)
	wantErrContains(t, err, "aborted", "interrupted by SIGINT")
	if res.Mode != backup.ModeStaged {
		t.Fatalf("mode %s, want staged", res.Mode)
	}
	if n := phases(rec, "archive"); n != 0 {
		t.Errorf("%d archive phase(s) after the interrupt, want none", n)
	}
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}
