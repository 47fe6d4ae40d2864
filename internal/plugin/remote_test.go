package plugin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// A failed upload is recorded and shown; the next upload catches up; the
// remote is configured from the compose file and config set remote.*.
func TestUploadStatusAndCatchUp(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "x-autobackup:\n  remote:\n    url: s3://bkt/x\n    path_style: true\n")
	var out bytes.Buffer
	if err := runConfigSet(ctx, &out, g, "remote.region", "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `remote.region = eu-west-1 (from file; was "" from default)`) {
		t.Errorf("config set output:\n%s", out.String())
	}
	if err := runConfigSet(ctx, &out, g, "remote.url", "s3://key:secret@bkt"); err == nil || strings.Contains(err.Error(), "secret@") {
		t.Errorf("config set of a url with credentials: %v", err)
	}
	first := commitBackup(t, g, time.Now().Add(-time.Hour), state.StatusSuccess)
	second := commitBackup(t, g, time.Now(), state.StatusSuccess)

	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if rc := env.RemoteConfig(); rc.URL != "s3://bkt/x" || !rc.PathStyle || rc.Region != "eu-west-1" {
		t.Errorf("remote config: %+v", rc)
	}
	mem := remote.NewMemory()
	env.Store = mem
	mem.PutErr = func(key string) error {
		if strings.Contains(key, first) {
			return errors.New("connection reset by peer")
		}
		return nil
	}
	var w bytes.Buffer
	err = lineService(&w, time.Now()).Upload(ctx, env)
	if !errors.Is(err, app.ErrLocalOnly) || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("upload: got %v, want local only naming %s", err, first)
	}
	if !strings.Contains(w.String(), "WARNING uploads to memory are not encrypted") || !strings.Contains(w.String(), "uploaded "+second) {
		t.Errorf("upload output:\n%s", w.String())
	}
	if env, err = loadProject(ctx, g); err != nil {
		t.Fatal(err)
	}
	env.Store = mem
	st := buildStatus(env, 5, time.Now())
	if strings.Join(st.LocalOnly, ",") != first || !strings.Contains(st.Next, "docker autobackup push") {
		t.Errorf("status: local_only %v, next %q", st.LocalOnly, st.Next)
	}
	if b, _ := env.State.FindBackup(second); b.Remote != state.UploadDone {
		t.Errorf("%s: remote = %q, want uploaded", second, b.Remote)
	}

	mem.PutErr = nil
	w.Reset()
	if err := lineService(&w, time.Now()).Upload(ctx, env); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(w.String(), "uploaded "); got != 1 {
		t.Errorf("catch-up uploaded %d backups, want 1 (the other is there):\n%s", got, w.String())
	}
	f, _ := state.Load(stateFile(g))
	for _, id := range []string{first, second} {
		if b, _ := f.FindBackup(id); b.Remote != state.UploadDone || b.RemoteError != "" {
			t.Errorf("%s: remote = %q (%q), want uploaded", id, b.Remote, b.RemoteError)
		}
	}

	// Remote retention deletes the older one there: it is not uploaded again.
	if err := runConfigSet(ctx, &out, g, "remote.keep_min", "1"); err != nil {
		t.Fatal(err)
	}
	if err := runConfigSet(ctx, &out, g, "remote.retention_days", "1"); err != nil {
		t.Fatal(err)
	}
	if env, err = loadProject(ctx, g); err != nil {
		t.Fatal(err)
	}
	env.Store = mem
	w.Reset()
	if err := lineService(&w, time.Now().Add(50*time.Hour)).PruneRemote(ctx, env, app.PruneRequest{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), "deleted from remote memory: "+first) {
		t.Errorf("remote prune:\n%s", w.String())
	}
	w.Reset()
	if err := lineService(&w, time.Now()).Upload(ctx, env); err != nil || strings.Contains(w.String(), "uploaded") {
		t.Errorf("upload after remote prune: %v\n%s", err, w.String())
	}
}

// TestRemotePruneUsesTheRules: the remote is pruned by the same rules as
// the local folder (here keep_daily), with [remote]'s own retention_days.
func TestRemotePruneUsesTheRules(t *testing.T) {
	ctx := context.Background()
	g := testProject(t, "x-autobackup:\n  remote:\n    url: s3://bkt/x\n")
	now := time.Now()
	var ids []string
	for d := 5; d >= 1; d-- {
		ids = append(ids, commitBackup(t, g, now.Add(-time.Duration(d)*24*time.Hour), state.StatusSuccess))
	}
	var out bytes.Buffer
	for _, kv := range [][2]string{{"keep_daily", "2"}, {"keep_min", "1"}, {"retention_days", "0"}, {"remote.keep_min", "1"}} {
		if err := runConfigSet(ctx, &out, g, kv[0], kv[1]); err != nil {
			t.Fatalf("config set %s: %v", kv[0], err)
		}
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	mem := remote.NewMemory()
	env.Store = mem
	if err := lineService(&out, time.Now()).Upload(ctx, env); err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	if err := lineService(&w, now).PruneRemote(ctx, env, app.PruneRequest{}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		deleted := strings.Contains(w.String(), "deleted from remote memory: "+id)
		if want := i < 3; deleted != want {
			t.Errorf("backup %d (%s): deleted %v, want %v:\n%s", i, id, deleted, want, w.String())
		}
	}
}
