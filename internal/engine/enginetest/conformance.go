package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// Harness prepares what the conformance suite needs on one engine. The
// fake's harness is in this package's tests, the real engine's in e2e.
type Harness interface {
	// Engine is the engine under test.
	Engine() engine.Engine
	// AddService makes a running container of service svc (number 1) in a
	// compose project, mounting each of volumes (which exist) under
	// /data/<volume>; with healthcheck, it has a healthcheck that passes.
	// It returns the container's ID. The harness removes it after the
	// test.
	AddService(t *testing.T, project, svc string, volumes []string, healthcheck bool) string
	// AddVolume makes a volume holding files (name → content) at its
	// root. The harness removes it after the test.
	AddVolume(t *testing.T, name string, files map[string]string)
	// Image is an image helpers can be created from (they are never
	// started by the suite).
	Image() string
	// RemoveVolume removes a volume the suite created itself; a missing
	// one is not an error.
	RemoveVolume(name string)
	// Unique returns a name no other test uses, starting with prefix.
	Unique(prefix string) string
}

// Run checks that h's engine keeps the contract of engine.Engine in the
// ways this program's code relies on.
func Run(t *testing.T, h Harness) {
	e := h.Engine()
	ctx := t.Context()

	t.Run("ContainersOfOneProject", func(t *testing.T) {
		p1, p2 := h.Unique("cfa"), h.Unique("cfb")
		id := h.AddService(t, p1, "web", nil, false)
		h.AddService(t, p2, "web", nil, false)
		cs, err := e.Containers(ctx, p1)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Fatalf("Containers(%s) = %+v, want the one container of that project", p1, cs)
		}
		c := cs[0]
		if c.ID != id || c.Service != "web" || c.Number != 1 || c.Project != p1 || c.State != "running" || c.Helper || c.OneOff {
			t.Errorf("container %+v, want ID %s, service web, number 1, project %s, running, not a helper", c, id, p1)
		}
		if cs, err := e.Containers(ctx, h.Unique("cfnone")); err != nil || len(cs) != 0 {
			t.Errorf("Containers of an unknown project = %v, %v; want none, no error", cs, err)
		}
	})

	t.Run("StopStartIdempotent", func(t *testing.T) {
		id := h.AddService(t, h.Unique("cfs"), "db", nil, false)
		for i := range 2 {
			if err := e.StopContainer(ctx, id, 5*time.Second); err != nil {
				t.Fatalf("stop #%d: %v", i+1, err)
			}
		}
		if st, err := e.InspectContainer(ctx, id); err != nil || st.State != "exited" {
			t.Errorf("after stop: %+v, %v; want exited", st, err)
		}
		if err := e.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := e.StartContainer(ctx, id); err != nil {
			t.Errorf("start of a running container: %v, want no error", err)
		}
		if st, err := e.InspectContainer(ctx, id); err != nil || st.State != "running" {
			t.Errorf("after start: %+v, %v; want running", st, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		missing := h.Unique("cfmissing")
		if _, err := e.InspectContainer(ctx, missing); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("inspect of a missing container: %v, want ErrNotFound", err)
		}
		if err := e.StopContainer(ctx, missing, time.Second); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("stop of a missing container: %v, want ErrNotFound", err)
		}
		if err := e.StartContainer(ctx, missing); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("start of a missing container: %v, want ErrNotFound", err)
		}
		if _, err := e.Volume(ctx, missing); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("inspect of a missing volume: %v, want ErrNotFound", err)
		}
		if err := e.RemoveHelper(ctx, missing); err != nil {
			t.Errorf("remove of a missing helper: %v, want no error", err)
		}
	})

	t.Run("Health", func(t *testing.T) {
		plain := h.AddService(t, h.Unique("cfh"), "plain", nil, false)
		if st, err := e.InspectContainer(ctx, plain); err != nil || st.HasHealthcheck || st.Health != "" {
			t.Errorf("container without a healthcheck: %+v, %v", st, err)
		}
		id := h.AddService(t, h.Unique("cfh"), "checked", nil, true)
		if err := e.StopContainer(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := e.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := e.InspectContainer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !st.HasHealthcheck {
				t.Fatalf("container with a healthcheck: %+v", st)
			}
			seen[st.Health] = true
			if st.Health == "healthy" {
				break
			}
			if st.Health != "starting" {
				t.Fatalf("health %q after a start, want starting then healthy", st.Health)
			}
			if time.Now().After(deadline) {
				t.Fatal("not healthy after 60s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("Volumes", func(t *testing.T) {
		name := h.Unique("cfvol")
		t.Cleanup(func() { h.RemoveVolume(name) })
		if err := e.CreateVolume(ctx, engine.VolumeInfo{Name: name, Driver: "local", Labels: map[string]string{"test.label": "x"}}); err != nil {
			t.Fatal(err)
		}
		v, err := e.Volume(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != name || v.Driver != "local" || v.Labels["test.label"] != "x" {
			t.Errorf("volume %+v, want %s, driver local, label test.label=x", v, name)
		}
	})

	t.Run("HelperCreatesMissingVolume", func(t *testing.T) {
		// The engine creates a volume a container mounts, empty: why a
		// backup checks the volume before and after creating its helper.
		name := h.Unique("cfauto")
		t.Cleanup(func() { h.RemoveVolume(name) })
		id, err := e.CreateHelper(ctx, engine.HelperSpec{Image: h.Image(), Project: "cf", Mounts: []engine.Mount{{Volume: name, Target: "/v", ReadOnly: true}}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.RemoveHelper(context.WithoutCancel(ctx), id)
		if _, err := e.Volume(ctx, name); err != nil {
			t.Errorf("volume after a helper mounted it: %v, want it created", err)
		}
	})

	t.Run("VolumeUsersAndHelpers", func(t *testing.T) {
		vol := h.Unique("cfusers")
		h.AddVolume(t, vol, nil)
		svc := h.AddService(t, h.Unique("cfu"), "app", []string{vol}, false)
		project := h.Unique("cfowner")
		hid, err := e.CreateHelper(ctx, engine.HelperSpec{Image: h.Image(), Project: project, Mounts: []engine.Mount{{Volume: vol, Target: "/v", ReadOnly: true}}})
		if err != nil {
			t.Fatal(err)
		}
		users, err := e.VolumeUsers(ctx, vol)
		if err != nil {
			t.Fatal(err)
		}
		var gotSvc, gotHelper bool
		for _, u := range users {
			switch u.ID {
			case svc:
				gotSvc = !u.Helper
			case hid:
				gotHelper = u.Helper
			}
		}
		if !gotSvc || !gotHelper || len(users) != 2 {
			t.Errorf("VolumeUsers = %+v, want the service container (not a helper) and the helper", users)
		}
		if ids, err := e.Helpers(ctx); err != nil || !slices.Contains(ids, hid) {
			t.Errorf("Helpers() = %v, %v; want it to list %s", ids, err, hid)
		}
		for i := range 2 {
			if err := e.RemoveHelper(ctx, hid); err != nil {
				t.Fatalf("remove helper #%d: %v", i+1, err)
			}
		}
		users, err = e.VolumeUsers(ctx, vol)
		if err != nil || len(users) != 1 || users[0].ID != svc {
			t.Errorf("VolumeUsers after the helper's removal = %+v, %v; want only the service", users, err)
		}
	})

	t.Run("CopyFromAndTo", func(t *testing.T) {
		vol := h.Unique("cfcopy")
		h.AddVolume(t, vol, map[string]string{"a.txt": "hello"})
		id, err := e.CreateHelper(ctx, engine.HelperSpec{Image: h.Image(), Project: "cf", Mounts: []engine.Mount{{Volume: vol, Target: "/v"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.RemoveHelper(context.WithoutCancel(ctx), id)
		in, err := BuildTar([]File{{Name: "b.txt", Type: tar.TypeReg, Mode: 0o644, Content: "world"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.CopyTo(ctx, id, "/v", bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		rc, err := e.CopyFrom(ctx, id, "/v/.")
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files, err := ReadTar(data)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range files {
			if f.Type == tar.TypeReg {
				got[strings.TrimPrefix(f.Name, "./")] = f.Content
			}
		}
		if got["a.txt"] != "hello" || got["b.txt"] != "world" || len(got) != 2 {
			t.Errorf("copied out %v, want a.txt=hello and b.txt=world", got)
		}
	})

	t.Run("ExecNeedsARunningContainer", func(t *testing.T) {
		id := h.AddService(t, h.Unique("cfx"), "app", nil, false)
		if err := e.StopContainer(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"true"}}); err == nil {
			t.Error("exec into a stopped container: no error")
		}
	})

	t.Run("CollectStaging", func(t *testing.T) {
		src, stage := h.Unique("cfsrc"), h.Unique("cfstage")
		t.Cleanup(func() { h.RemoveVolume(stage) })
		if err := e.CreateVolume(ctx, engine.VolumeInfo{Name: stage, Driver: "local", Labels: map[string]string{
			engine.LabelStaging: "true", engine.LabelProject: "cf", engine.LabelStagingSource: src}}); err != nil {
			t.Fatal(err)
		}
		removed, err := e.CollectStaging(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(removed, stage) {
			t.Errorf("CollectStaging removed %v, want the staging volume %s whose source is gone", removed, stage)
		}
		if _, err := e.Volume(ctx, stage); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("staging volume after collection: %v, want ErrNotFound", err)
		}
	})
}
