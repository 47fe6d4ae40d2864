package backup_test

import (
	"archive/tar"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// packExecs returns the helpers that ran a pack (not a probe).
func packExecs(f *enginetest.Fake) []string {
	var out []string
	for _, e := range f.Execs() {
		cmd := strings.Join(e.Spec.Cmd, " ")
		if strings.Contains(cmd, " pack ") && !strings.Contains(cmd, "--probe") {
			out = append(out, e.Container)
		}
	}
	return out
}

func onlyFinishedArchives(t *testing.T, path string, m *archive.Manifest) {
	t.Helper()
	des, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{archive.ManifestName: true}
	for _, v := range m.Volumes {
		want[v.Archive] = true
	}
	for _, de := range des {
		if !want[de.Name()] {
			t.Errorf("left in the backup: %s", de.Name())
		}
	}
	for _, c := range archive.Verify(t.Context(), path, m, archive.SafetyOptions{}) {
		if c.Err != nil {
			t.Errorf("verify: %v", c.Err)
		}
	}
}

func TestRunStreamDirect(t *testing.T) {
	f := stdEngine()
	f.Shared = true
	o := stdOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	equal(t, "copies through the API", f.Ops("copy-from"), []string(nil))
	equal(t, "packs", len(packExecs(f)), 2)
	// Helpers are created, started and probed before the first stop, the
	// pack runs while stopped, and they are gone at the end.
	for _, id := range []string{"helper-1", "helper-2"} {
		before(t, f, enginetest.Call{Op: "start", ID: id}, enginetest.Call{Op: "stop", ID: "web-1"})
	}
	calls := f.Calls()
	lastStop, firstStart := f.Index("stopped", "db-1"), f.Index("start", "db-1")
	for i, c := range calls {
		if c.Op == "exec" && strings.Contains(c.Detail, " pack ") && !strings.Contains(c.Detail, "--probe") && (i < lastStop || i > firstStart) {
			t.Errorf("pack in %s at call %d, not while stopped (calls %d..%d)", c.ID, i, lastStop, firstStart)
		}
	}
	noHelpersLeft(t, f)
	for _, s := range f.HelperSpecs() {
		if len(s.Binds) != 1 || s.Binds[0].Target != "/out" || s.Binds[0].ReadOnly || !s.Mounts[0].ReadOnly {
			t.Errorf("helper spec %+v: want the volume read-only and the partial backup at /out", s)
		}
	}
	equal(t, "archived db files", archivedFiles(t, res.Path, res.Manifest, "p_dbdata"), dbFiles)
	equal(t, "archived cache files", archivedFiles(t, res.Path, res.Manifest, "p_cache"), cacheFiles)
	onlyFinishedArchives(t, res.Path, res.Manifest)
}

func TestRunDirectFallsBackToTheAPI(t *testing.T) {
	tests := map[string]func(f *enginetest.Fake, o *backup.Options){
		"remote engine":  func(f *enginetest.Fake, o *backup.Options) {},
		"foreign files":  func(f *enginetest.Fake, o *backup.Options) { f.Shared, f.Foreign = true, true },
		"DIRECT=0":       func(f *enginetest.Fake, o *backup.Options) { f.Shared, o.NoDirect = true, true },
		"staged, remote": func(f *enginetest.Fake, o *backup.Options) { o.Mode = backup.ModeStaged },
		"staged, foreign": func(f *enginetest.Fake, o *backup.Options) {
			f.Shared, f.Foreign, o.Mode = true, true, backup.ModeStaged
		},
		"staged, DIRECT=0": func(f *enginetest.Fake, o *backup.Options) {
			f.Shared, o.NoDirect, o.Mode = true, true, backup.ModeStaged
		},
		"helper cannot run ": func(f *enginetest.Fake, o *backup.Options) { f.Shared = true; f.HelperImageFn = cannotRun },
	}
	for name, set := range tests {
		t.Run(name, func(t *testing.T) {
			f := stdEngine()
			o := stdOptions(t)
			var mu sync.Mutex // reporters must be safe for concurrent use
			var infos []string
			o.Reporter = progress.Func(func(e progress.Event) {
				mu.Lock()
				defer mu.Unlock()
				if e.Kind == progress.Warning {
					infos = append(infos, e.Message)
				}
			})
			set(f, &o)
			res, err := backup.Run(t.Context(), f, o)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "packs", packExecs(f), []string(nil))
			if len(f.Ops("copy-from")) != 2 {
				t.Errorf("copies through the API: %v, want one per volume", f.Ops("copy-from"))
			}
			if o.NoDirect {
				for _, s := range f.HelperSpecs() {
					if len(s.Binds) > 0 {
						t.Errorf("DOCKER_AUTOBACKUP_DIRECT=0, yet a helper has binds: %+v", s)
					}
				}
			} else if f.HelperImageFn == nil && !strings.Contains(strings.Join(infos, "\n"), "engine's API") {
				t.Errorf("the user is not warned that the data goes through the API: %q", infos)
			}
			if !o.NoDirect && f.HelperImageFn == nil && !strings.Contains(strings.Join(res.Warnings, "\n"), "engine's API") {
				t.Errorf("result warnings = %q, want the API fallback", res.Warnings)
			}
			noHelpersLeft(t, f)
			equal(t, "archived db files", archivedFiles(t, res.Path, res.Manifest, "p_dbdata"), dbFiles)
			onlyFinishedArchives(t, res.Path, res.Manifest)
		})
	}
}

func cannotRun(context.Context) (engine.HelperImage, error) {
	return engine.HelperImage{Ref: "autobackup-helper:empty", Reason: "the engine runs linux/arm64"}, nil
}

func TestRunStagedDirect(t *testing.T) {
	f := stdEngine()
	f.Shared = true
	o, _ := stagedOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Mode != backup.ModeStaged {
		t.Fatalf("mode %s (%s)", res.Mode, res.ModeReason)
	}
	equal(t, "copies through the API", f.Ops("copy-from"), []string(nil))
	equal(t, "packs", len(packExecs(f)), 2)
	// The archive is written after the restart.
	started := f.Index("start", "web-1")
	for i, c := range f.Calls() {
		if c.Op == "exec" && strings.Contains(c.Detail, " pack ") && !strings.Contains(c.Detail, "--probe") && i < started {
			t.Errorf("pack in %s at call %d, before the restart (call %d)", c.ID, i, started)
		}
	}
	noHelpersLeft(t, f)
	equal(t, "archived db files", archivedFiles(t, res.Path, res.Manifest, "p_dbdata"), dbFiles)
	onlyFinishedArchives(t, res.Path, res.Manifest)
}

func TestRestoreDirect(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		f, ro := backedUp(t)
		f.Shared, f.Foreign = true, foreign
		f.AddVolume(dbVolume, enginetest.File{Name: "./garbage", Type: tar.TypeReg, Mode: 0o644, Content: "new"})
		rec := &progress.Recorder{}
		ro.Reporter = rec
		rp, err := backup.PlanRestore(t.Context(), f, ro)
		if err != nil {
			t.Fatalf("PlanRestore: %v", err)
		}
		if _, err := backup.Restore(t.Context(), f, ro, rp); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		// Through the helper too, the restore shows how far it got.
		if !foreign {
			bytes, restoring := map[string]int{}, false
			for _, e := range rec.Events() {
				if e.Kind == progress.Phase {
					restoring = e.Message == "restore"
				}
				if restoring && e.Kind == progress.VolumeBytes {
					bytes[e.Volume]++
				}
			}
			if bytes["p_dbdata"] == 0 || bytes["p_cache"] == 0 {
				t.Errorf("progress while the helpers unpacked: %v, want some for each volume", bytes)
			}
		}
		equal(t, "volume after restore", f.Files("p_dbdata"), dbFiles)
		equal(t, "cache after restore", f.Files("p_cache"), cacheFiles)
		if foreign {
			equal(t, "direct restores", f.Unpacked(), []string(nil))
			equal(t, "writes through the API", len(f.CopyTos()), 2)
		} else {
			equal(t, "direct restores", f.Unpacked(), []string{"p_cache", "p_dbdata"})
			equal(t, "writes through the API", len(f.CopyTos()), 0)
			for _, s := range f.HelperSpecs() {
				if len(s.Binds) != 1 || !s.Binds[0].ReadOnly || s.Binds[0].Source != ro.BackupPath {
					t.Errorf("helper %+v: want the backup bound read-only", s)
				}
			}
		}
		noHelpersLeft(t, f)
		allRunning(t, f, "db-1", "app-1", "web-1")
	}
}

func TestRunDirectPackFailureIsNotRetried(t *testing.T) {
	f := stdEngine()
	f.Shared = true
	o := stdOptions(t)
	f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
		cmd := strings.Join(spec.Cmd, " ")
		if strings.Contains(cmd, " pack ") && !strings.Contains(cmd, "--probe") {
			return 1, "helper: ./big: read: input/output error", nil
		}
		return f.DefaultExec(ctx, id, spec)
	}
	_, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "exited with code 1", "input/output error")
	// A real failure of the direct copy is reported, not hidden by a
	// second attempt through the API.
	equal(t, "copies through the API", f.Ops("copy-from"), []string(nil))
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}
