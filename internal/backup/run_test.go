package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

func TestRunHappyPath(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1", "db-1"})
	equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	// Every copy happens with everything stopped.
	for _, h := range f.Ops("copy-from") {
		before(t, f, enginetest.Call{Op: "stopped", ID: "db-1"}, enginetest.Call{Op: "copy-from", ID: h})
		before(t, f, enginetest.Call{Op: "copy-from", ID: h}, enginetest.Call{Op: "start", ID: "db-1"})
	}

	wantSpecs := []engine.HelperSpec{
		{Image: "autobackup-helper:test", Project: "p", Mounts: []engine.Mount{{Volume: "p_cache", Target: "/v", ReadOnly: true}}},
		{Image: "autobackup-helper:test", Project: "p", Mounts: []engine.Mount{{Volume: "p_dbdata", Target: "/v", ReadOnly: true}}},
	}
	equal(t, "helpers", f.HelperSpecs(), wantSpecs)
	var paths []string
	for _, c := range f.Calls() {
		if c.Op == "copy-from" {
			paths = append(paths, c.Detail)
		}
	}
	equal(t, "copy-from paths", paths, []string{"/v/.", "/v/."})
	equal(t, "helpers run", f.Ops("run-helper"), []string(nil))
	noHelpersLeft(t, f)
	equal(t, "volumes created", f.Ops("create-volume"), []string(nil))

	// The backup is complete and verifies.
	m, path, err := archive.Open(o.Dir, o.Project.Name, res.ID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, c := range archive.Verify(t.Context(), path, m, archive.SafetyOptions{}) {
		if c.Err != nil {
			t.Errorf("Verify %s: %v", c.Volume, c.Err)
		}
	}
	equal(t, "db archive", archivedFiles(t, path, m, "p_dbdata"), dbFiles)
	equal(t, "cache archive", archivedFiles(t, path, m, "p_cache"), cacheFiles)
	equal(t, "manifest project", []string{m.Project, m.ProjectDir, m.ToolVersion, m.Mode}, []string{"p", "/srv/p", "test", archive.ModeStream})
	var db archive.Volume
	for _, v := range m.Volumes {
		if v.Name == "p_dbdata" {
			db = v
		}
	}
	equal(t, "db volume", []any{db.Key, db.Driver, db.DriverOpts, db.Labels}, []any{"dbdata", dbVolume.Driver, dbVolume.Options, dbVolume.Labels})
	var svcs []string
	for _, s := range m.Services {
		svcs = append(svcs, s.Name+" "+s.Image+" "+s.ImageID+" "+strings.Join(s.RepoDigests, ","))
	}
	equal(t, "manifest services", svcs, []string{
		"app app:latest sha256:app registry.example/app@sha256:0123",
		"db db:latest sha256:db registry.example/db@sha256:0123",
		"web web:latest sha256:web registry.example/web@sha256:0123",
	})

	// The result.
	equal(t, "Result.Path", res.Path, filepath.Join(o.Dir, res.ID))
	if !archive.ValidID(res.ID) {
		t.Errorf("Result.ID %q is not a valid ID", res.ID)
	}
	var names []string
	var size int64
	for _, v := range res.Volumes {
		names = append(names, v.Name)
		size += v.ArchiveBytes
	}
	equal(t, "Result.Volumes", names, []string{"p_cache", "p_dbdata"})
	if res.SizeBytes <= 0 || res.SizeBytes != size {
		t.Errorf("Result.SizeBytes = %d, want the sum of the archives, %d", res.SizeBytes, size)
	}
	if res.Downtime <= 0 {
		t.Errorf("Result.Downtime = %v, want > 0", res.Downtime)
	}
	equal(t, "Result.Stopped", res.Stopped, []string{"app", "db", "web"})
	if res.Manifest == nil || res.Manifest.ID != res.ID {
		t.Errorf("Result.Manifest = %+v, want the committed manifest", res.Manifest)
	}
	if res.Finished.Before(res.Started) {
		t.Errorf("Result.Finished %v before Started %v", res.Finished, res.Started)
	}
}

func TestRunSnapshotFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		set  func(f *enginetest.Fake)
		want string
	}{
		{"create helper fails", func(f *enginetest.Fake) {
			f.CreateHelperFn = func(context.Context, engine.HelperSpec) (string, error) { return "", boom }
		}, "snapshot p_cache: boom"},
		{"copy from fails", func(f *enginetest.Fake) {
			f.CopyFromFn = func(context.Context, string, string) (io.ReadCloser, error) { return nil, boom }
		}, "snapshot p_cache: read from the engine: boom"},
		{"stream fails mid-way", func(f *enginetest.Fake) {
			data := mustTar(t, cacheFiles)
			f.CopyFromFn = func(context.Context, string, string) (io.ReadCloser, error) {
				return io.NopCloser(&failingReader{r: bytes.NewReader(data[:len(data)/2]), err: boom}), nil
			}
		}, "boom"},
		{"second volume fails", func(f *enginetest.Fake) {
			f.CopyFromFn = func(ctx context.Context, id, path string) (io.ReadCloser, error) {
				if id == "helper-2" {
					return nil, boom
				}
				return io.NopCloser(bytes.NewReader(mustTar(t, cacheFiles))), nil
			}
		}, "snapshot p_dbdata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stdEngine()
			tt.set(f)
			o := stdOptions(t)
			res, err := backup.Run(t.Context(), f, o)
			wantErrContains(t, err, tt.want)
			wantErrIs(t, err, boom)
			if errors.Is(err, backup.ErrPreflight) {
				t.Errorf("error %v wraps ErrPreflight, but services were stopped", err)
			}
			equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1", "db-1"})
			equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
			allRunning(t, f, "db-1", "app-1", "web-1")
			noHelpersLeft(t, f)
			noBackupLeft(t, o.Dir)
			if res == nil || res.Path != "" || res.Manifest != nil {
				t.Errorf("Result = %+v, want one without a backup", res)
			}
			if res != nil && res.Downtime <= 0 {
				t.Errorf("Result.Downtime = %v, want > 0", res.Downtime)
			}
		})
	}
}

// cancelReader cancels the run on its first Read, then behaves like a
// Docker stream: it ends with the context's error.
type cancelReader struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.cancel()
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestRunCancelledDuringSnapshot(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.CopyFromFn = func(rctx context.Context, id, path string) (io.ReadCloser, error) {
		return io.NopCloser(&cancelReader{ctx: rctx, cancel: cancel}), nil
	}
	_, err := backup.Run(ctx, f, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}

func TestRunPreflight(t *testing.T) {
	tests := []struct {
		name string
		set  func(t *testing.T, f *enginetest.Fake, o *backup.Options)
		want []string
	}{
		{"missing volume", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			f.RemoveVolume("p_dbdata")
		}, []string{"p_dbdata", `key "dbdata"`, "used by db", "docker compose up"}},
		{"no named volumes", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			o.Project = project(svc("web", nil))
		}, []string{"no named volumes"}},
		{"every volume skipped", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			o.SkipVolumes = map[string]string{"dbdata": "skip", "cache": "skip"}
		}, []string{"no named volumes"}},
		{"undeclared volume", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			delete(o.Project.Volumes, "cache")
		}, []string{`"cache"`, "not declared"}},
		{"containers fail", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			f.ContainersFn = func(context.Context, string) ([]engine.Container, error) { return nil, errors.New("daemon gone") }
		}, []string{"daemon gone"}},
		{"inspect volume fails", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			f.VolumeFn = func(context.Context, string) (engine.VolumeInfo, error) {
				return engine.VolumeInfo{}, errors.New("denied")
			}
		}, []string{"inspect volume p_cache", "denied"}},
		{"helper image fails", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			f.HelperImageFn = func(context.Context) (engine.HelperImage, error) {
				return engine.HelperImage{}, errors.New("no helper")
			}
		}, []string{"no helper"}},
		{"backup dir is a file", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			o.Dir = filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(o.Dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"is a file"}},
		{"backup dir under a file", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			parent := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(parent, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			o.Dir = filepath.Join(parent, "backups")
		}, []string{"create backup directory"}},
		{"backup dir not writable", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			if os.Geteuid() == 0 {
				t.Skip("root can write to a read-only directory")
			}
			if err := os.Chmod(o.Dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(o.Dir, 0o700) })
		}, []string{"not writable"}},
		{"pre hook exits non-zero", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			o.Services = map[string]compose.ServiceOptions{
				"db": {Pre: []string{"pg_dump"}, Stop: true, Timeout: time.Minute},
			}
			f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
				// Hooks may print secrets: only the tail goes into the error.
				return 1, "password=hunter2 " + strings.Repeat("x", 400) + " disk full", nil
			}
		}, []string{"x-autobackup pre hook of db exited with code 1", "disk full"}},
		{"pre hook cannot run", func(t *testing.T, f *enginetest.Fake, o *backup.Options) {
			o.Services = map[string]compose.ServiceOptions{
				"db": {Pre: []string{"pg_dump"}, Stop: true, Timeout: time.Minute},
			}
			f.ExecFn = func(context.Context, string, engine.ExecSpec) (int, string, error) {
				return 0, "", errors.New("exec: no such file")
			}
		}, []string{"x-autobackup pre hook of db", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stdEngine()
			o := stdOptions(t)
			tt.set(t, f, &o)
			res, err := backup.Run(t.Context(), f, o)
			wantErrContains(t, err, tt.want...)
			wantErrIs(t, err, backup.ErrPreflight)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q carries the head of the hook's output", err)
			}
			equal(t, "stops", f.Ops("stop"), []string(nil))
			equal(t, "starts", f.Ops("start"), []string(nil))
			equal(t, "volumes created", f.Ops("create-volume"), []string(nil))
			equal(t, "helpers created", f.HelperSpecs(), []engine.HelperSpec(nil))
			if res == nil {
				t.Fatal("Run returned a nil Result")
			}
			equal(t, "Result.Stopped", res.Stopped, []string(nil))
			if fi, err := os.Stat(o.Dir); err == nil && fi.IsDir() {
				noBackupLeft(t, o.Dir)
			}
		})
	}
}

func TestRunHooks(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	o.Services = map[string]compose.ServiceOptions{
		"db":  {Pre: []string{"pg_dump"}, Post: []string{"notify", "db"}, Stop: true, Timeout: time.Minute},
		"app": {Stop: true, Timeout: time.Minute},
	}
	if _, err := backup.Run(t.Context(), f, o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	equal(t, "execs", f.Execs(), []enginetest.Exec{
		{Container: "db-1", Spec: engine.ExecSpec{Cmd: []string{"pg_dump"}}},
		{Container: "db-1", Spec: engine.ExecSpec{Cmd: []string{"notify", "db"}}},
	})
	calls := f.Calls()
	pre := slices.IndexFunc(calls, func(c enginetest.Call) bool { return c.Op == "exec" && c.Detail == "pg_dump" })
	post := slices.IndexFunc(calls, func(c enginetest.Call) bool { return c.Op == "exec" && c.Detail == "notify db" })
	if first := f.Index("stop", "web-1"); pre > first {
		t.Errorf("pre hook (call %d) after the first stop (call %d)", pre, first)
	}
	if last := f.Index("start", "web-1"); post < last {
		t.Errorf("post hook (call %d) before the last start (call %d)", post, last)
	}
}

func TestRunPostHookFails(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	o.Services = map[string]compose.ServiceOptions{
		"db": {Post: []string{"notify"}, Stop: true, Timeout: time.Minute},
	}
	f.ExecFn = func(context.Context, string, engine.ExecSpec) (int, string, error) { return 2, "unreachable", nil }
	res, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "x-autobackup post hook of db exited with code 2: unreachable")
	if errors.Is(err, backup.ErrPreflight) {
		t.Errorf("error %v wraps ErrPreflight", err)
	}
	allRunning(t, f, "db-1", "app-1", "web-1")
	entries, lerr := archive.ListAll(o.Dir)
	if lerr != nil || len(entries) != 1 || entries[0].Err != nil {
		t.Fatalf("List = %v, %v; want the one backup, kept", entries, lerr)
	}
	equal(t, "Result.Path", res.Path, entries[0].Path)
}

func TestRunKeepAndSkip(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	o.Keep = map[string]string{"db": "x-autobackup stop: false"}
	o.SkipVolumes = map[string]string{"cache": "x-autobackup skip: true"}
	res, err := backup.Run(t.Context(), f, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1"})
	equal(t, "starts", f.Ops("start"), []string{"app-1", "web-1"})
	// The direct path is tried first (refused by this engine), then the API.
	equal(t, "helpers", slices.Compact(f.Ops("create-helper")), []string{"p_dbdata"})
	if slices.Contains(f.Ops("volume"), "p_cache") {
		t.Errorf("skipped volume p_cache was inspected: %v", f.Ops("volume"))
	}
	var names []string
	for _, v := range res.Manifest.Volumes {
		names = append(names, v.Name)
	}
	equal(t, "manifest volumes", names, []string{"p_dbdata"})
	equal(t, "Result.Stopped", res.Stopped, []string{"app", "web"})
}

func TestRunVolumeRemovedDuringBackup(t *testing.T) {
	f := stdEngine()
	f.StopFn = func(ctx context.Context, id string, timeout time.Duration) error {
		if id == "db-1" {
			f.RemoveVolume("p_dbdata")
		}
		return nil
	}
	o := stdOptions(t)
	_, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "snapshot p_dbdata", "removed during the backup")
	equal(t, "starts", f.Ops("start"), []string{"db-1", "app-1", "web-1"})
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
	equal(t, "copies", f.Ops("copy-from"), []string{"helper-1"}) // p_cache only
}

func TestRunVolumeReplacedDuringBackup(t *testing.T) {
	f := stdEngine()
	f.StopFn = func(ctx context.Context, id string, timeout time.Duration) error {
		if id == "db-1" {
			// Someone removed the volume and something re-created it
			// under the same name (without compose's labels).
			f.RemoveVolume("p_dbdata")
			f.AddVolume(engine.VolumeInfo{Name: "p_dbdata", Driver: "local"})
		}
		return nil
	}
	o := stdOptions(t)
	_, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "snapshot p_dbdata", "re-created")
	allRunning(t, f, "db-1", "app-1", "web-1")
	noHelpersLeft(t, f)
	noBackupLeft(t, o.Dir)
}

func TestRunNotRunningServiceLeftAlone(t *testing.T) {
	f := enginetest.New(ctr("db", "running"), ctr("app", "exited"), ctr("web", "running"))
	f.AddVolume(dbVolume, dbFiles...)
	f.AddVolume(cacheVolume, cacheFiles...)
	o := stdOptions(t)
	if _, err := backup.Run(t.Context(), f, o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "db-1"})
	equal(t, "starts", f.Ops("start"), []string{"db-1", "web-1"})
	if got := f.State("app-1"); got != "exited" {
		t.Errorf("app-1 is %s, want it left exited", got)
	}
}

func TestRunRestartFailure(t *testing.T) {
	f := stdEngine()
	f.Update("web-1", func(c *enginetest.Container) { c.ExitAfter, c.ExitCode = 1, 3 })
	o := stdOptions(t)
	o.Services = map[string]compose.ServiceOptions{"db": {Post: []string{"notify"}, Stop: true, Timeout: time.Minute}}
	res, err := backup.Run(t.Context(), f, o)
	var re *compose.RestartError
	if !errors.As(err, &re) {
		t.Fatalf("Run: %v, want a *compose.RestartError in the chain", err)
	}
	equal(t, "failed services", re.Services(), []string{"web"})
	wantErrContains(t, err, "exited with code 3")
	entries, lerr := archive.ListAll(o.Dir)
	if lerr != nil || len(entries) != 1 || entries[0].Err != nil {
		t.Fatalf("List = %v, %v; want the backup committed anyway", entries, lerr)
	}
	if res.Path == "" || res.Downtime <= 0 {
		t.Errorf("Result = %+v, want Path and Downtime set", res)
	}
	// Post hooks are for services that are back; with one not back they
	// are not run.
	equal(t, "execs", f.Execs(), []enginetest.Exec(nil))
}

// lifecycleProject is stdProject with compose pre_stop and post_start
// hooks on db.
func lifecycleProject() *types.Project {
	p := stdProject()
	db := p.Services["db"]
	one := "1"
	db.PreStop = []types.ServiceHook{{
		Command:     types.ShellCommand{"sh", "-c", "flush"},
		User:        "postgres",
		Privileged:  true,
		WorkingDir:  "/var/lib/db",
		Environment: types.MappingWithEquals{"B": &one, "A": &one, "UNSET": nil},
	}}
	db.PostStart = []types.ServiceHook{{Command: types.ShellCommand{"warm-up"}}}
	p.Services["db"] = db
	return p
}

func TestRunLifecycleHooks(t *testing.T) {
	f := stdEngine()
	o := stdOptions(t)
	o.Project = lifecycleProject()
	o.Hooks = backup.LifecycleHooks(f)
	if _, err := backup.Run(t.Context(), f, o); err != nil {
		t.Fatalf("Run: %v", err)
	}
	equal(t, "execs", f.Execs(), []enginetest.Exec{
		{Container: "db-1", Spec: engine.ExecSpec{Cmd: []string{"sh", "-c", "flush"}, User: "postgres", Privileged: true, WorkingDir: "/var/lib/db", Env: []string{"A=1", "B=1"}}},
		{Container: "db-1", Spec: engine.ExecSpec{Cmd: []string{"warm-up"}}},
	})
	calls := f.Calls()
	preStop := slices.IndexFunc(calls, func(c enginetest.Call) bool { return c.Op == "exec" && c.Detail == "sh -c flush" })
	postStart := slices.IndexFunc(calls, func(c enginetest.Call) bool { return c.Op == "exec" && c.Detail == "warm-up" })
	if stop := f.Index("stop", "db-1"); preStop < 0 || preStop > stop {
		t.Errorf("pre_stop hook at call %d, stop of db-1 at call %d: want the hook first", preStop, stop)
	}
	if start := f.Index("start", "db-1"); postStart < start {
		t.Errorf("post_start hook at call %d, start of db-1 at call %d: want the start first", postStart, start)
	}
}

func TestRunLifecycleHookFails(t *testing.T) {
	f := stdEngine()
	f.ExecFn = func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
		return 3, "flush failed", nil
	}
	o := stdOptions(t)
	o.Project = lifecycleProject()
	o.Hooks = backup.LifecycleHooks(f)
	res, err := backup.Run(t.Context(), f, o)
	wantErrContains(t, err, "pre_stop hook 1 of p-db-1 exited with code 3: flush failed")
	if errors.Is(err, backup.ErrPreflight) {
		t.Errorf("error %v wraps ErrPreflight, but web and app were stopped", err)
	}
	// Dependents were stopped first; db's stop is aborted and they come back.
	equal(t, "stops", f.Ops("stop"), []string{"web-1", "app-1"})
	equal(t, "starts", f.Ops("start"), []string{"app-1", "web-1"})
	allRunning(t, f, "db-1", "app-1", "web-1")
	equal(t, "helpers", f.HelperSpecs(), []engine.HelperSpec(nil))
	noBackupLeft(t, o.Dir)
	equal(t, "Result.Stopped", res.Stopped, []string{"app", "web"})
}
