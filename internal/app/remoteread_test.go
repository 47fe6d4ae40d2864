package app_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
)

// The remote reads the CLI offers (list --remote, verify --remote, the
// download before a restore) go through the service like the uploads.
func TestRemoteReadsThroughTheService(t *testing.T) {
	p := newProject(t, "[remote]\nurl = \"s3://bkt/x\"\n")
	mem := remote.NewMemory()
	p.Store = mem
	s := &app.Service{Engine: runningShop()}
	out, err := s.Backup(t.Context(), p, app.BackupRequest{LockTimeout: -1, Holder: "run"})
	if err != nil || out.UploadErr != nil {
		t.Fatalf("backup: %v, upload: %v", err, out.UploadErr)
	}
	id := out.Result.ID

	for _, all := range []bool{false, true} {
		listed, err := s.RemoteBackups(t.Context(), p, all)
		if err != nil || len(listed) != 1 || listed[0].ID != id || listed[0].Index == nil || listed[0].Index.Project != "shop" {
			t.Errorf("RemoteBackups(all=%v) = %+v, %v; want the one backup %s of shop", all, listed, err, id)
		}
	}

	vs, err := s.VerifyRemote(t.Context(), p, app.VerifyRemoteRequest{ID: archive.Latest})
	if err != nil || len(vs) != 1 || vs[0].ID != id || vs[0].Err != nil || vs[0].IndexOnly || len(vs[0].Checks) == 0 {
		t.Fatalf("VerifyRemote(latest) = %+v, %v; want every object of %s checked", vs, err, id)
	}
	for _, c := range vs[0].Checks {
		if c.Err != nil {
			t.Errorf("intact %s: %v", c.Object, c.Err)
		}
	}
	objs, err := mem.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(objs, func(o remote.Object) bool { return strings.HasSuffix(o.Key, ".tar.zst") })
	if i < 0 {
		t.Fatalf("no archive among the remote objects %+v", objs)
	}
	mem.Corrupt(objs[i].Key, 10)
	vs, err = s.VerifyRemote(t.Context(), p, app.VerifyRemoteRequest{All: true})
	if err != nil || len(vs) != 1 || !slices.ContainsFunc(vs[0].Checks, func(c remote.Check) bool { return c.Err != nil }) {
		t.Errorf("VerifyRemote(all) after corrupting %s = %+v, %v; want that object reported", objs[i].Key, vs, err)
	}
	mem.Corrupt(objs[i].Key, 10) // back as it was

	// Gone here, so the restore downloads it; once here, it is not
	// downloaded again.
	if err := os.RemoveAll(out.Result.Path); err != nil {
		t.Fatal(err)
	}
	var ev progress.Recorder
	s.Reporter = &ev
	m, path, err := s.Download(t.Context(), p, app.DownloadRequest{ID: archive.Latest})
	if err != nil || m.ID != id || !exists(path) {
		t.Fatalf("Download(latest) = %v, %q, %v; want backup %s here", m, path, err, id)
	}
	if got := messages(&ev, progress.Info); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "downloading backup "+id) }) {
		t.Errorf("info while downloading: %q", got)
	}
	ev = progress.Recorder{}
	if m, _, err := s.Download(t.Context(), p, app.DownloadRequest{ID: id}); err != nil || m.ID != id || len(ev.Of(progress.Info)) != 0 {
		t.Errorf("Download of a backup that is here: %v, %v, events %q; want it without a download", m, err, messages(&ev, progress.Info))
	}
	if _, _, err := s.Download(t.Context(), p, app.DownloadRequest{ID: "20200101-000000-0000"}); err == nil || !strings.Contains(err.Error(), "nothing was stopped") {
		t.Errorf("Download of a backup the remote lacks: %v", err)
	}
}

func TestRemoteReadsWithoutRemote(t *testing.T) {
	p := newProject(t, "")
	s := &app.Service{}
	_, err1 := s.RemoteBackups(t.Context(), p, false)
	_, err2 := s.VerifyRemote(t.Context(), p, app.VerifyRemoteRequest{All: true})
	_, _, err3 := s.Download(t.Context(), p, app.DownloadRequest{})
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, app.ErrNoRemote) || !errors.Is(err, app.ErrConfig) {
			t.Errorf("without a remote: %v, want ErrNoRemote (a configuration error)", err)
		}
	}
}
