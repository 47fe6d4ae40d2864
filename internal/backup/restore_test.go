package backup_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// backedUp runs a backup of stdProject with a fresh fake engine and
// returns the engine (its call log reset) and restore options for the
// backup.
func backedUp(t *testing.T) (*enginetest.Fake, backup.RestoreOptions) {
	t.Helper()
	f := stdEngine()
	o := stdOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	m, path, err := archive.Open(o.Dir, o.Project.Name, res.ID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	f.ResetCalls()
	return f, backup.RestoreOptions{Project: o.Project, BackupPath: path, Manifest: m, Timeouts: fastTimeouts}
}

func volumeNames(vs []archive.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestPlanRestoreSelection(t *testing.T) {
	tests := []struct {
		name    string
		volumes []string
		want    []string
		stop    [][]string
	}{
		{"all", nil, []string{"p_cache", "p_dbdata"}, [][]string{{"web"}, {"app"}, {"db"}}},
		{"by key", []string{"dbdata"}, []string{"p_dbdata"}, [][]string{{"web"}, {"app"}, {"db"}}},
		{"by engine name", []string{"p_cache"}, []string{"p_cache"}, [][]string{{"web"}, {"app"}}},
		{"twice", []string{"dbdata", "p_dbdata"}, []string{"p_dbdata"}, [][]string{{"web"}, {"app"}, {"db"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ro := backedUp(t)
			ro.Volumes = tt.volumes
			rp, err := backup.PlanRestore(t.Context(), f, ro)
			if err != nil {
				t.Fatalf("PlanRestore: %v", err)
			}
			equal(t, "Volumes", volumeNames(rp.Volumes), tt.want)
			equal(t, "StopOrder", rp.StopOrder, tt.stop)
			equal(t, "Create", rp.Create, []string(nil))
			equal(t, "stops", f.Ops("stop"), []string(nil))
		})
	}
}

func TestPlanRestoreRefuses(t *testing.T) {
	tests := []struct {
		name    string
		set     func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions)
		wantIs  error
		want    []string
		noCalls bool // not even a look at the engine
	}{
		{"unknown volume", func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions) {
			ro.Volumes = []string{"dbdata", "nope"}
		}, backup.ErrUsage, []string{`"nope"`, "p_cache", "p_dbdata"}, true},
		{"tampered archive", func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions) {
			tamper(t, filepath.Join(ro.BackupPath, ro.Manifest.Volumes[1].Archive))
		}, backup.ErrVerify, []string{ro0Archive(), "nothing was changed", "volume(s) p_dbdata", "--volume cache"}, true},
		{"missing archive", func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions) {
			if err := os.Remove(filepath.Join(ro.BackupPath, ro.Manifest.Volumes[0].Archive)); err != nil {
				t.Fatal(err)
			}
		}, backup.ErrVerify, nil, true},
		{"helper cannot run", func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions) {
			f.HelperImageFn = func(context.Context) (engine.HelperImage, error) {
				return engine.HelperImage{Ref: "busybox", Reason: "the helper image was not built from this binary"}, nil
			}
		}, nil, []string{"helper container", "not possible here: the helper image was not built from this binary"}, false},
		{"inspect volume fails", func(t *testing.T, f *enginetest.Fake, ro *backup.RestoreOptions) {
			f.VolumeFn = func(context.Context, string) (engine.VolumeInfo, error) {
				return engine.VolumeInfo{}, errors.New("denied")
			}
		}, nil, []string{"inspect volume", "denied"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ro := backedUp(t)
			tt.set(t, f, &ro)
			rp, err := backup.PlanRestore(t.Context(), f, ro)
			wantErrContains(t, err, tt.want...)
			if tt.wantIs != nil {
				wantErrIs(t, err, tt.wantIs)
			}
			if rp != nil {
				t.Errorf("PlanRestore returned a plan with its error: %+v", rp)
			}
			if tt.noCalls {
				equal(t, "engine calls", f.Calls(), []enginetest.Call(nil))
			}
			equal(t, "stops", f.Ops("stop"), []string(nil))
			equal(t, "helpers", f.HelperSpecs(), []engine.HelperSpec(nil))
		})
	}
}

// ro0Archive is the archive file name of p_dbdata, the second volume of a
// backup of stdProject (volumes are sorted by name).
func ro0Archive() string { return archive.ArchiveFileBase("p_dbdata") }

// tamper flips one byte in the middle of a file.
func tamper(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRestore(t *testing.T) {
	f, ro := backedUp(t)
	ro.Volumes = []string{"dbdata"}
	// The data changed since the backup.
	f.AddVolume(dbVolume, enginetest.File{Name: "./garbage", Type: tar.TypeReg, Mode: 0o644, Content: "new"})
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	// Verification comes before anything is asked of the engine.
	if calls := f.Calls(); len(calls) == 0 || calls[0].Op != "volume" {
		t.Errorf("first engine call %v, want the volume inspect after verification", calls)
	}
	res, err := backup.Restore(t.Context(), f, ro, rp)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1", "db-1"})
	equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	equal(t, "helpers", f.HelperSpecs(), []engine.HelperSpec{{
		Image: "autobackup-helper:test", Project: "p", KeepLogs: true,
		Mounts: []engine.Mount{{Volume: "p_dbdata", Target: "/v"}},
		Cmd:    []string{"/autobackup", "__helper", "wipe", "/v"},
	}})
	noHelpersLeft(t, f)
	before(t, f, enginetest.Call{Op: "stopped", ID: "db-1"}, enginetest.Call{Op: "run-helper", ID: "helper-1"})
	before(t, f, enginetest.Call{Op: "run-helper", ID: "helper-1"}, enginetest.Call{Op: "copy-to", ID: "helper-1"})
	before(t, f, enginetest.Call{Op: "copy-to", ID: "helper-1"}, enginetest.Call{Op: "start", ID: "db-1"})

	copies := f.CopyTos()
	if len(copies) != 1 {
		t.Fatalf("CopyTo calls: %d, want 1", len(copies))
	}
	equal(t, "CopyTo path", copies[0].Path, "/v")
	got, err := enginetest.ReadTar(copies[0].Tar)
	if err != nil {
		t.Fatalf("tar given to CopyTo: %v", err)
	}
	equal(t, "tar given to CopyTo", got, archivedFiles(t, ro.BackupPath, ro.Manifest, "p_dbdata"))
	equal(t, "volume after restore", f.Files("p_dbdata"), dbFiles)
	equal(t, "volumes created", f.CreatedVolumes(), []engine.VolumeInfo(nil))

	equal(t, "Result.Volumes", res.Volumes, []string{"p_dbdata"})
	equal(t, "Result.Stopped", res.Stopped, []string{"app", "db", "web"})
	if res.Downtime <= 0 {
		t.Errorf("Result.Downtime = %v, want > 0", res.Downtime)
	}
}

func TestRestoreOnlyWhatUsesTheVolume(t *testing.T) {
	f, ro := backedUp(t)
	ro.Volumes = []string{"cache"}
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	if _, err := backup.Restore(t.Context(), f, ro, rp); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1"})
	equal(t, "starts", f.Ops("start"), []string{"app-1", "web-1"})
	equal(t, "volume after restore", f.Files("p_cache"), cacheFiles)
}

func TestRestoreCreatesMissingVolume(t *testing.T) {
	f, ro := backedUp(t)
	f.RemoveVolume("p_dbdata")
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	equal(t, "Create", rp.Create, []string{"p_dbdata"})
	if _, err := backup.Restore(t.Context(), f, ro, rp); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	equal(t, "volumes created", f.CreatedVolumes(), []engine.VolumeInfo{{
		Name: "p_dbdata", Driver: dbVolume.Driver, Options: dbVolume.Options, Labels: dbVolume.Labels,
	}})
	before(t, f, enginetest.Call{Op: "create-volume", ID: "p_dbdata"}, enginetest.Call{Op: "create-helper", ID: "p_dbdata"})
	equal(t, "volume after restore", f.Files("p_dbdata"), dbFiles)
	allRunning(t, f, "db-1", "app-1", "web-1")
}

func TestRestoreFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		before func(f *enginetest.Fake) // before PlanRestore
		set    func(f *enginetest.Fake)
		want   []string
	}{
		{"create volume fails", func(f *enginetest.Fake) { f.RemoveVolume("p_cache") }, func(f *enginetest.Fake) {
			f.CreateVolumeFn = func(context.Context, engine.VolumeInfo) error { return boom }
		}, []string{"create volume p_cache", "boom"}},
		{"create helper fails", nil, func(f *enginetest.Fake) {
			f.CreateHelperFn = func(context.Context, engine.HelperSpec) (string, error) { return "", boom }
		}, []string{"restore p_cache", "boom"}},
		{"wipe exits non-zero", nil, func(f *enginetest.Fake) {
			f.RunHelperFn = func(context.Context, string) (int, string, error) { return 1, "rm: read-only file system", nil }
		}, []string{"restore p_cache", "empty the volume", "code 1", "read-only file system"}},
		{"wipe cannot run", nil, func(f *enginetest.Fake) {
			f.RunHelperFn = func(context.Context, string) (int, string, error) { return 0, "", boom }
		}, []string{"empty the volume", "boom"}},
		{"copy fails before reading", nil, func(f *enginetest.Fake) {
			f.CopyToFn = func(context.Context, string, string, io.Reader) error { return boom }
		}, []string{"restore p_cache", "write into the volume", "boom"}},
		{"copy fails half-way", nil, func(f *enginetest.Fake) {
			f.CopyToFn = func(ctx context.Context, id, path string, r io.Reader) error {
				if _, err := io.CopyN(io.Discard, r, 512); err != nil {
					return err
				}
				return boom
			}
		}, []string{"write into the volume", "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ro := backedUp(t)
			if tt.before != nil {
				tt.before(f)
			}
			rp, err := backup.PlanRestore(t.Context(), f, ro)
			if err != nil {
				t.Fatalf("PlanRestore: %v", err)
			}
			tt.set(f)
			res, err := backup.Restore(t.Context(), f, ro, rp)
			wantErrContains(t, err, tt.want...)
			if tt.name != "wipe exits non-zero" {
				wantErrIs(t, err, boom)
			}
			equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1", "db-1"})
			equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
			allRunning(t, f, "db-1", "app-1", "web-1")
			noHelpersLeft(t, f)
			equal(t, "Result.Volumes", res.Volumes, []string(nil))
		})
	}
}

func TestRestoreRefusesArchiveChangedAfterPlan(t *testing.T) {
	f, ro := backedUp(t)
	ro.Volumes = []string{"dbdata"}
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	tamper(t, filepath.Join(ro.BackupPath, ro.Manifest.Volumes[1].Archive))
	_, err = backup.Restore(t.Context(), f, ro, rp)
	if err == nil {
		t.Fatal("Restore of an archive changed after verification succeeded")
	}
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
}

func TestRestoreStopFails(t *testing.T) {
	f, ro := backedUp(t)
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	f.StopFn = func(ctx context.Context, id string, timeout time.Duration) error {
		if id == "app-1" {
			return errors.New("permission denied")
		}
		f.SetState(id, "exited")
		return nil
	}
	res, err := backup.Restore(t.Context(), f, ro, rp)
	wantErrContains(t, err, "stop app", "permission denied")
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1"})
	equal(t, "helpers", f.HelperSpecs(), []engine.HelperSpec(nil))
	// app-1 may be half-stopped: it is started again with web-1.
	equal(t, "starts", f.Ops("start"), []string{"app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	equal(t, "Result.Stopped", res.Stopped, []string{"app", "web"})
}

func TestRestoreCancelled(t *testing.T) {
	f, ro := backedUp(t)
	rp, err := backup.PlanRestore(t.Context(), f, ro)
	if err != nil {
		t.Fatalf("PlanRestore: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.RunHelperFn = func(ctx context.Context, id string) (int, string, error) {
		cancel()
		return 0, "", ctx.Err()
	}
	_, err = backup.Restore(ctx, f, ro, rp)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Restore: %v, want context.Canceled", err)
	}
	equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
}
