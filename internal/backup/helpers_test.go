package backup_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"reflect"
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

// fastTimeouts keep failing restarts short.
var fastTimeouts = compose.Timeouts{Stop: time.Second, Start: time.Second, Health: time.Second, Poll: 5 * time.Millisecond}

// svc builds a service. mounts are "source:target" for named volumes,
// ":target" for an anonymous volume; deps are services it depends on.
func svc(name string, mounts []string, deps ...string) types.ServiceConfig {
	s := types.ServiceConfig{Name: name}
	for _, m := range mounts {
		src, target, _ := strings.Cut(m, ":")
		s.Volumes = append(s.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeVolume, Source: src, Target: target})
	}
	if len(deps) > 0 {
		s.DependsOn = types.DependsOnConfig{}
		for _, d := range deps {
			s.DependsOn[d] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
		}
	}
	return s
}

// project builds project "p". Every named volume the services mount is
// declared with the name compose would give it (p_<key>).
func project(svcs ...types.ServiceConfig) *types.Project {
	p := &types.Project{Name: "p", WorkingDir: "/srv/p", Services: types.Services{}, Volumes: types.Volumes{}}
	for _, s := range svcs {
		p.Services[s.Name] = s
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				p.Volumes[v.Source] = types.VolumeConfig{Name: "p_" + v.Source}
			}
		}
	}
	return p
}

// stdProject is the project most tests use: web → app → db, db mounts
// dbdata, app mounts cache.
func stdProject() *types.Project {
	return project(
		svc("db", []string{"dbdata:/var/lib/db"}),
		svc("app", []string{"cache:/cache"}, "db"),
		svc("web", nil, "app"),
	)
}

var (
	dbFiles = []enginetest.File{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		{Name: "./base/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "./base/1", Type: tar.TypeReg, Mode: 0o600, Content: "table one"},
		{Name: "./PG_VERSION", Type: tar.TypeReg, Mode: 0o644, Content: "16\n"},
		{Name: "./current", Type: tar.TypeSymlink, Mode: 0o777, Link: "base/1"},
	}
	cacheFiles = []enginetest.File{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		{Name: "./hot", Type: tar.TypeReg, Mode: 0o644, Content: strings.Repeat("cache line\n", 1000)},
	}
	dbVolume = engine.VolumeInfo{
		Name: "p_dbdata", Driver: "local",
		Options: map[string]string{"type": "none", "o": "bind", "device": "/srv/db"},
		Labels:  map[string]string{"com.docker.compose.project": "p", "com.docker.compose.volume": "dbdata"},
	}
	cacheVolume = engine.VolumeInfo{Name: "p_cache", Driver: "local"}
)

// stdEngine is a fake engine running stdProject with both volumes filled.
func stdEngine() *enginetest.Fake {
	f := enginetest.New(ctr("db", "running"), ctr("app", "running"), ctr("web", "running"))
	f.AddVolume(dbVolume, dbFiles...)
	f.AddVolume(cacheVolume, cacheFiles...)
	return f
}

func stdOptions(t *testing.T) backup.Options {
	t.Helper()
	return backup.Options{
		Project:     stdProject(),
		Dir:         t.TempDir(),
		Level:       1,
		Timeouts:    fastTimeouts,
		ToolVersion: "test",
		Mode:        backup.ModeStream, // staged_test.go covers the staged mode
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v: want it to wrap %v", err, target)
	}
}

func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q: want it to mention %q", err, p)
		}
	}
}

// allRunning checks that every container of the fake is running.
func allRunning(t *testing.T, f *enginetest.Fake, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if got := f.State(id); got != "running" {
			t.Errorf("container %s is %q, want running", id, got)
		}
	}
}

// noHelpersLeft checks that every helper created was removed.
func noHelpersLeft(t *testing.T, f *enginetest.Fake) {
	t.Helper()
	if live := f.LiveHelpers(); len(live) > 0 {
		t.Errorf("helpers not removed: %v", live)
	}
	created := len(f.HelperSpecs())
	if removed := len(f.Ops("remove-helper")); removed < created {
		t.Errorf("%d helpers created, %d removed", created, removed)
	}
}

// noBackupLeft checks that dir holds no complete backup and no partial one.
func noBackupLeft(t *testing.T, dir string) {
	t.Helper()
	entries, err := archive.ListAll(dir)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(entries) > 0 {
		t.Errorf("backups left in %s: %v", dir, entries)
	}
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadDir: %v", err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".partial-") || strings.HasPrefix(de.Name(), ".autobackup-probe-") {
			t.Errorf("left behind in %s: %s", dir, de.Name())
		}
	}
}

// archivedFiles decompresses the archive of volume name in a backup.
func archivedFiles(t *testing.T, path string, m *archive.Manifest, name string) []enginetest.File {
	t.Helper()
	i := slices.IndexFunc(m.Volumes, func(v archive.Volume) bool { return v.Name == name })
	if i < 0 {
		t.Fatalf("volume %s not in manifest", name)
	}
	rc, err := archive.OpenVolume(path, m.Volumes[i])
	if err != nil {
		t.Fatalf("OpenVolume: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	files, err := enginetest.ReadTar(data)
	if err != nil {
		t.Fatalf("archive of %s: %v", name, err)
	}
	return files
}

// before reports whether call a comes before call b in the log (both must
// be there).
func before(t *testing.T, f *enginetest.Fake, a, b enginetest.Call) {
	t.Helper()
	i, j := f.Index(a.Op, a.ID), f.Index(b.Op, b.ID)
	if i < 0 || j < 0 {
		t.Errorf("want %v before %v, but one is missing from the log: %v", a, b, f.Calls())
		return
	}
	if i > j {
		t.Errorf("want %v (call %d) before %v (call %d)", a, i, b, j)
	}
}
