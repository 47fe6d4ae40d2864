package plugin

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// commitBackup writes a complete (volume-less) backup that started at
// started into the project's backup directory and records it.
func commitBackup(t *testing.T, g *globalOptions, started time.Time, status string) string {
	t.Helper()
	dir := filepath.Join(g.ProjectDir, "backups")
	id := archive.NewID(started)
	p, err := archive.Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(&archive.Manifest{Project: "shop", Mode: archive.ModeStream, Started: started, Finished: started.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// Fresh mtimes on purpose: retention must not look at them.
	err = state.Update(stateFile(g), func(f *state.File) error {
		f.RecordBackup(state.Backup{ID: id, Started: started, Finished: started, Status: status, Path: "backups/" + id})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "")
	now := time.Now()
	day := 24 * time.Hour
	old1 := commitBackup(t, g, now.Add(-40*day), state.StatusSuccess)
	old2 := commitBackup(t, g, now.Add(-30*day), state.StatusSuccess)
	keep1 := commitBackup(t, g, now.Add(-20*day), state.StatusSuccess)
	keep2 := commitBackup(t, g, now.Add(-10*day), state.StatusSuccess)
	recent := commitBackup(t, g, now.Add(-1*day), state.StatusSuccess)
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "keep_min", "2"); err != nil {
		t.Fatal(err)
	}
	// A broken backup: reported, kept.
	brokenID := archive.NewID(now.Add(-50 * day))
	if err := os.MkdirAll(filepath.Join(g.ProjectDir, "backups", brokenID), 0o700); err != nil {
		t.Fatal(err)
	}
	// Its manifest is gone, so only this project's history ties it here.
	if err := state.Update(stateFile(g), func(f *state.File) error {
		f.RecordBackup(state.Backup{ID: brokenID, Started: now.Add(-50 * day), Finished: now.Add(-50 * day), Status: state.StatusSuccess, Path: "backups/" + brokenID})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{dryRun: true}, now, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"would delete " + old1, "would delete " + old2, "keep " + recent, "WARNING backup " + brokenID} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	entries, _ := archive.ListAll(filepath.Join(g.ProjectDir, "backups"))
	if len(entries) != 6 {
		t.Fatalf("dry run deleted something: %d backups left", len(entries))
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{}, now, nil); err != nil {
		t.Fatal(err)
	}
	entries, _ = archive.ListAll(filepath.Join(g.ProjectDir, "backups"))
	var left []string
	for _, e := range entries {
		left = append(left, e.ID)
	}
	// keep_min 2 keeps recent and keep2; keep1 (20 days) is past the default 7 days.
	want := []string{recent, keep2, brokenID}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v\n%s", left, want, out.String())
	}
	f, err := state.Load(stateFile(g))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Prunes) != 1 || len(f.Prunes[0].Deleted) != 3 {
		t.Fatalf("prune record: %+v", f.Prunes)
	}
	for _, id := range []string{old1, old2, keep1} {
		if b, ok := f.FindBackup(id); !ok || b.Pruned.IsZero() {
			t.Errorf("backup %s not marked pruned: %+v", id, b)
		}
		if !strings.Contains(out.String(), "deleted backup "+id) {
			t.Errorf("output does not name %s:\n%s", id, out.String())
		}
	}

	out.Reset()
	if err := runPrune(ctx, &out, g, pruneOptions{}, now, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Nothing to delete") {
		t.Errorf("second prune:\n%s", out.String())
	}
}

// pruneAfterRun with a single, ancient backup deletes nothing.
func TestPruneAfterRunKeepsOnlyBackup(t *testing.T) {
	g := testProject(t, "")
	id := commitBackup(t, g, time.Now().Add(-365*24*time.Hour), state.StatusSuccess)
	env, err := loadProject(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	lineService(&stderr, time.Now()).PruneAfterRun(context.Background(), env)
	if _, err := os.Stat(filepath.Join(env.BackupDir, id)); err != nil {
		t.Errorf("the only backup was deleted: %v\n%s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("pruneAfterRun printed with nothing to do:\n%s", stderr.String())
	}
}

// lineService is a service without an engine whose reports are lines on
// w, at the time now.
func lineService(w io.Writer, now time.Time) *app.Service {
	return &app.Service{Reporter: lineReporter(w), Now: func() time.Time { return now }}
}
