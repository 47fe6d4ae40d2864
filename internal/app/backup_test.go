package app_test

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

const composeYAML = `services:
  db:
    image: busybox
    volumes: ["dbdata:/data"]
  app:
    image: busybox
    depends_on: [db]
volumes:
  dbdata:
`

// newProject writes a compose project "shop" (db with a volume, app
// depending on it), with settings when settings is not empty, and loads it.
func newProject(t *testing.T, settings string) *app.Project {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if settings != "" {
		if err := os.WriteFile(filepath.Join(dir, state.FileName), []byte(settings), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return load(t, dir)
}

func load(t *testing.T, dir string) *app.Project {
	t.Helper()
	p, err := app.Load(context.Background(), compose.Options{ProjectDir: dir, WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runningShop is a fake engine on which the shop project runs.
func runningShop() *enginetest.Fake {
	f := enginetest.New(
		&enginetest.Container{Container: engine.Container{ID: "db-1", Name: "shop-db-1", Service: "db", Number: 1, Project: "shop", State: "running"}, Volumes: []string{"shop_dbdata"}},
		&enginetest.Container{Container: engine.Container{ID: "app-1", Name: "shop-app-1", Service: "app", Number: 1, Project: "shop", State: "running"}},
	)
	f.Shared = true
	f.AddVolume(engine.VolumeInfo{Name: "shop_dbdata", Driver: "local"},
		enginetest.File{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		enginetest.File{Name: "./orders.db", Type: tar.TypeReg, Mode: 0o644, Content: "order 1\n"})
	return f
}

// messages lists the messages of the events of one kind r got.
func messages(r *progress.Recorder, kind progress.Kind) []string {
	var out []string
	for _, e := range r.Of(kind) {
		out = append(out, e.Message)
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// A backup stops in reverse dependency order, restarts in order, commits
// the backup, records it and applies retention, all through the one use
// case the CLI and the daemon call.
func TestBackupRecordsAndAppliesRetention(t *testing.T) {
	p := newProject(t, "[settings]\nretention_days = 1\nkeep_min = 1\n")
	// An old backup of this project that retention lets go.
	started := time.Date(2020, 1, 1, 2, 0, 0, 0, time.UTC)
	old := archive.NewID(started)
	pending, err := archive.Begin(p.BackupDir, old, "shop")
	if err != nil {
		t.Fatal(err)
	}
	m := &archive.Manifest{FormatVersion: archive.FormatVersion, ID: old, Project: "shop", Host: archive.Hostname(), Mode: backup.ModeStream, Started: started}
	if err := pending.Commit(m); err != nil {
		t.Fatal(err)
	}

	f := runningShop()
	var ev progress.Recorder
	s := &app.Service{Engine: f, Reporter: &ev}
	out, err := s.Backup(t.Context(), p, app.BackupRequest{Tag: "pre-upgrade", LockTimeout: -1, Holder: "run"})
	if err != nil {
		t.Fatalf("backup: %v (warnings %q)", err, messages(&ev, progress.Warning))
	}
	r := out.Result
	if r.Path == "" || !exists(filepath.Join(r.Path, archive.ManifestName)) {
		t.Fatalf("no committed backup: %+v", r)
	}
	if got, want := f.Ops("stop"), []string{"app-1", "db-1"}; !slices.Equal(got, want) {
		t.Errorf("stop order %v, want %v (reverse dependency order)", got, want)
	}
	starts := slices.DeleteFunc(f.Ops("start"), func(id string) bool { return strings.HasPrefix(id, "helper-") })
	if got, want := starts, []string{"db-1", "app-1"}; !slices.Equal(got, want) {
		t.Errorf("start order %v, want %v", got, want)
	}
	if f.State("db-1") != "running" || f.State("app-1") != "running" {
		t.Errorf("services after the backup: db %s, app %s", f.State("db-1"), f.State("app-1"))
	}

	h := load(t, p.Dir).State
	b, ok := h.FindBackup(r.ID)
	if !ok || b.Status != state.StatusSuccess || b.Tag != "pre-upgrade" || len(b.Volumes) != 1 {
		t.Errorf("history record %+v (found %v), want a successful tagged backup of one volume", b, ok)
	}
	if exists(filepath.Join(p.BackupDir, old)) {
		t.Errorf("retention kept %s, older than retention_days with a newer backup", old)
	}
	if !slices.ContainsFunc(messages(&ev, progress.Info), func(s string) bool { return strings.Contains(s, "deleted backup "+old) }) {
		t.Errorf("no report of the deletion: %q", messages(&ev, progress.Info))
	}
}

// A run that fails before it stopped anything, in a folder this program
// never wrote to (a project never started: its volume does not exist),
// leaves the folder as it was.
func TestBackupOfNeverStartedProjectWritesNothing(t *testing.T) {
	p := newProject(t, "")
	f := enginetest.New() // nothing of the project exists on the engine
	s := &app.Service{Engine: f}
	_, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	if !errors.Is(err, backup.ErrPreflight) {
		t.Fatalf("backup of a project never started: %v, want a preflight failure", err)
	}
	entries, _ := os.ReadDir(p.Dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"compose.yaml"}) {
		t.Errorf("project folder after the failed run: %v, want only compose.yaml", names)
	}
}

// The same failure in a project that is set up is recorded: a scheduled
// backup that did not happen must show.
func TestBackupPreflightFailureRecordedWhenSetUp(t *testing.T) {
	p := newProject(t, "[settings]\nenabled = true\n")
	s := &app.Service{Engine: enginetest.New()}
	if _, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "daemon"}); !errors.Is(err, backup.ErrPreflight) {
		t.Fatalf("err = %v, want a preflight failure", err)
	}
	h := load(t, p.Dir).State
	if len(h.Backups) != 1 || h.Backups[0].Status != state.StatusFailed || !strings.Contains(h.Backups[0].Error, "does not exist") {
		t.Errorf("history %+v, want one failed run saying the volume does not exist", h.Backups)
	}
}

// A busy project lock: nothing runs, and no outcome.
func TestBackupLockBusy(t *testing.T) {
	p := newProject(t, "")
	lock, err := state.Acquire(t.Context(), p.Dir, 0, "restore")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	f := runningShop()
	out, err := (&app.Service{Engine: f}).Backup(t.Context(), p, app.BackupRequest{LockTimeout: 0, Holder: "daemon"})
	if !errors.Is(err, state.ErrLocked) || out != nil {
		t.Fatalf("backup while locked: %v, %+v; want ErrLocked and no outcome", err, out)
	}
	if len(f.Ops("stop")) != 0 {
		t.Errorf("a busy project was stopped: %v", f.Ops("stop"))
	}
}

// An upload failure leaves a complete, recorded local backup and says it
// is local only; the next upload catches up.
func TestBackupUploadFailureIsLocalOnly(t *testing.T) {
	p := newProject(t, "[remote]\nurl = \"s3://bkt/x\"\n")
	mem := remote.NewMemory()
	p.Store = mem
	mem.PutErr = func(string) error { return errors.New("connection reset by peer") }
	var ev progress.Recorder
	s := &app.Service{Engine: runningShop(), Reporter: &ev}
	out, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !errors.Is(out.UploadErr, app.ErrLocalOnly) || !strings.Contains(out.UploadErr.Error(), out.Result.ID) {
		t.Fatalf("upload error %v, want local only naming %s", out.UploadErr, out.Result.ID)
	}
	b, _ := load(t, p.Dir).State.FindBackup(out.Result.ID)
	if b.Status != state.StatusSuccess || b.Remote != state.UploadFailed {
		t.Errorf("record %+v, want success, upload failed", b)
	}
	if !slices.ContainsFunc(messages(&ev, progress.Warning), func(s string) bool { return strings.Contains(s, "not encrypted") }) {
		t.Errorf("no warning about the unencrypted remote: %q", messages(&ev, progress.Warning))
	}

	mem.PutErr = nil
	p = load(t, p.Dir)
	p.Store = mem
	if err := s.Push(t.Context(), p, -1); err != nil {
		t.Fatalf("push: %v", err)
	}
	if b, _ := load(t, p.Dir).State.FindBackup(out.Result.ID); b.Remote != state.UploadDone {
		t.Errorf("after push: remote = %q, want uploaded", b.Remote)
	}
}

// Services that do not come back fail the run, yet the complete copy is
// committed and recorded.
func TestBackupServicesNotBack(t *testing.T) {
	p := newProject(t, "")
	f := runningShop()
	f.StartFn = func(ctx context.Context, id string) error {
		if id == "app-1" {
			return errors.New("port is already allocated")
		}
		return f.DefaultStart(ctx, id)
	}
	out, err := (&app.Service{Engine: f}).Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	restart, down := app.RestartFailed(err)
	if !down || !slices.Equal(restart.Services(), []string{"app"}) {
		t.Fatalf("err = %v, want app not back", err)
	}
	if out.Result.Path == "" {
		t.Errorf("the complete copy was not committed")
	}
	b, _ := load(t, p.Dir).State.FindBackup(out.Result.ID)
	if b.Status != state.StatusFailed {
		t.Errorf("record %+v, want failed", b)
	}
}

// An interrupted backup says so in one line and keeps nothing.
func TestBackupInterrupted(t *testing.T) {
	p := newProject(t, "")
	f := runningShop()
	ctx, cancel := context.WithCancelCause(t.Context())
	f.StopFn = func(c context.Context, id string, timeout time.Duration) error {
		cancel(errors.New("interrupted by SIGTERM"))
		return f.DefaultStop(context.WithoutCancel(c), id, timeout)
	}
	out, err := (&app.Service{Engine: f}).Backup(ctx, p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	var ie app.InterruptedError
	if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "backup interrupted by SIGTERM: nothing was kept") {
		t.Fatalf("err = %v, want the one-line interruption", err)
	}
	if !out.Interrupted || out.Result.Path != "" {
		t.Errorf("outcome %+v, want interrupted with nothing kept", out)
	}
	if f.State("db-1") != "running" || f.State("app-1") != "running" {
		t.Errorf("services after the interrupt: db %s, app %s", f.State("db-1"), f.State("app-1"))
	}
	b, _ := load(t, p.Dir).State.FindBackup(out.Result.ID)
	if b.Status != state.StatusInterrupted {
		t.Errorf("record %+v, want interrupted", b)
	}
}

// A restore goes through the same layer: planned with the lock held,
// optionally preceded by a backup of the current data, run, recorded.
func TestRestoreThroughTheService(t *testing.T) {
	p := newProject(t, "")
	f := runningShop()
	s := &app.Service{Engine: f}
	out, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	if err != nil {
		t.Fatal(err)
	}
	f.SetFiles("shop_dbdata", []enginetest.File{{Name: "./", Type: tar.TypeDir, Mode: 0o755}, {Name: "./orders.db", Type: tar.TypeReg, Mode: 0o644, Content: "order 1\norder 2\n"}})

	p = load(t, p.Dir)
	planned, err := s.PlanRestore(t.Context(), p, app.RestoreRequest{LockTimeout: -1, Options: backup.RestoreOptions{
		Project: p.Project, BackupPath: out.Result.Path, Manifest: out.Result.Manifest}})
	if err != nil {
		t.Fatal(err)
	}
	defer planned.Release()
	if _, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: 0, Holder: "run"}); !errors.Is(err, state.ErrLocked) {
		t.Errorf("backup while a restore is planned: %v, want ErrLocked", err)
	}
	if !planned.ReplacesData() {
		t.Error("ReplacesData = false for a volume that exists")
	}
	safety, err := planned.BackupFirst(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planned.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	files := f.Files("shop_dbdata")
	if i := slices.IndexFunc(files, func(x enginetest.File) bool { return x.Name == "./orders.db" }); i < 0 || files[i].Content != "order 1\n" {
		t.Errorf("volume after restore: %+v, want the backed-up orders.db", files)
	}
	h := load(t, p.Dir).State
	if len(h.Restores) != 1 || h.Restores[0].BackupID != out.Result.ID || h.Restores[0].Status != state.StatusSuccess {
		t.Errorf("restores %+v, want one successful restore of %s", h.Restores, out.Result.ID)
	}
	if b, ok := h.FindBackup(safety); !ok || b.Tag != "pre-restore" || b.Status != state.StatusSuccess {
		t.Errorf("safety backup %+v (found %v), want a successful pre-restore backup", b, ok)
	}
}

// Clean removes the project's leftovers on the engine and in the folder,
// and nothing of another project's.
func TestClean(t *testing.T) {
	p := newProject(t, "")
	f := runningShop()
	staging := map[string]string{engine.LabelStaging: "true", engine.LabelProject: "shop", engine.LabelStagingSource: "shop_dbdata"}
	f.AddVolume(engine.VolumeInfo{Name: "shop_dbdata-stage", Driver: "local", Labels: staging})
	other := map[string]string{engine.LabelStaging: "true", engine.LabelProject: "blog", engine.LabelStagingSource: "blog_db"}
	f.AddVolume(engine.VolumeInfo{Name: "blog_db"})
	f.AddVolume(engine.VolumeInfo{Name: "blog_db-stage", Driver: "local", Labels: other})
	if _, err := f.CreateHelper(t.Context(), engine.HelperSpec{Image: enginetest.HelperRef, Project: "shop"}); err != nil {
		t.Fatal(err)
	}
	removed, err := (&app.Service{Engine: f}).Clean(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"helper container helper-1", "staging volume shop_dbdata-stage"}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if _, err := f.Volume(t.Context(), "blog_db-stage"); err != nil {
		t.Errorf("another project's staging volume was removed: %v", err)
	}
	if len(f.LiveHelpers()) != 0 {
		t.Errorf("helpers left: %v", f.LiveHelpers())
	}
}

// Verify checks every archive and records the outcome: a corrupt backup
// gets its error in the history (retention then no longer counts it), a
// sound one the time it verified.
func TestVerifyRecords(t *testing.T) {
	p := newProject(t, "")
	s := &app.Service{Engine: runningShop()}
	var ids []string
	for range 2 {
		out, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.Result.ID)
		time.Sleep(1100 * time.Millisecond) // backup IDs are per second
	}
	p = load(t, p.Dir)
	entries, err := p.Backups()
	if err != nil || len(entries) != 2 || entries[0].ID != ids[1] || entries[1].ID != ids[0] {
		t.Fatalf("backups %v, %v; want %v newest first", entries, err, ids)
	}
	// Damage the older backup's archive.
	bad := entries[1]
	arch := filepath.Join(bad.Path, bad.Manifest.Volumes[0].Archive)
	if err := os.WriteFile(arch, []byte("not zstd"), 0o600); err != nil {
		t.Fatal(err)
	}
	verified, err := s.Verify(t.Context(), p, entries, archive.SafetyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(verified) != 2 || verified[0].Checks[0].Err != nil || verified[1].Checks[0].Err == nil {
		t.Fatalf("verified %+v, want the newer sound and the older corrupt", verified)
	}
	h := load(t, p.Dir).State
	if b, _ := h.FindBackup(bad.ID); b.VerifyError == "" {
		t.Errorf("the corrupt backup's record has no verify error: %+v", b)
	}
	if b, _ := h.FindBackup(entries[0].ID); b.VerifyError != "" || b.Verified.IsZero() {
		t.Errorf("the sound backup's record: %+v, want verified, no error", b)
	}
}
