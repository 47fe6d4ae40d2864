package docker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", errReset, true},
		{"connection refused", errRefused, true},
		{"500", errServer, true},
		{"503", errUnavailable, true},
		{"404", errNotFound, false},
		{"409", errConflict, false},
		{"cancelled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, false},
		{"plain", errors.New("something else"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%s: %v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// Transient errors on idempotent calls are retried, then the call succeeds.
func TestRetryTransientThenSucceeds(t *testing.T) {
	for _, c := range []struct {
		method string
		call   func(d engine.Engine) error
	}{
		{"ContainerStop", func(d engine.Engine) error { return d.StopContainer(t.Context(), "x", time.Second) }},
		{"ContainerStart", func(d engine.Engine) error { return d.StartContainer(t.Context(), "x") }},
		{"ContainerInspect", func(d engine.Engine) error { _, err := d.InspectContainer(t.Context(), "x"); return err }},
		{"ContainerList", func(d engine.Engine) error { _, err := d.Containers(t.Context(), "p"); return err }},
		{"VolumeInspect", func(d engine.Engine) error { _, err := d.Volume(t.Context(), "v"); return err }},
		{"ContainerRemove", func(d engine.Engine) error { return d.RemoveHelper(t.Context(), "h") }},
	} {
		t.Run(c.method, func(t *testing.T) {
			api := newFakeAPI()
			api.failFirst(c.method, errReset, errServer, errUnavailable)
			if err := c.call(retried(api, time.Millisecond)); err != nil {
				t.Fatalf("after 3 transient errors: %v, want success on the 4th attempt", err)
			}
			if got := api.count(c.method); got != 4 {
				t.Errorf("%s called %d times, want 4", c.method, got)
			}
		})
	}
}

// 404 and 409 are answers, not hiccups: returned at once, 404 as
// engine.ErrNotFound.
func TestRetryNotForClientErrors(t *testing.T) {
	api := newFakeAPI()
	d := retried(api, time.Millisecond)
	api.failFirst("ContainerStop", errNotFound)
	err := d.StopContainer(t.Context(), "x", time.Second)
	if !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("stop of a missing container: %v, want engine.ErrNotFound", err)
	}
	api.failFirst("ContainerStart", errConflict)
	if err := d.StartContainer(t.Context(), "x"); err == nil {
		t.Error("start with a 409: no error")
	}
	api.failFirst("VolumeInspect", errNotFound)
	if _, err := d.Volume(t.Context(), "v"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("missing volume: %v, want engine.ErrNotFound", err)
	}
	for _, m := range []string{"ContainerStop", "ContainerStart", "VolumeInspect"} {
		if got := api.count(m); got != 1 {
			t.Errorf("%s called %d times, want 1 (no retry)", m, got)
		}
	}
}

// Retries are bounded: after the policy's attempts the last error is
// returned.
func TestRetryBounded(t *testing.T) {
	api := newFakeAPI()
	for range 20 {
		api.failFirst("ContainerInspect", errServer)
	}
	_, err := retried(api, time.Millisecond).InspectContainer(t.Context(), "x")
	if err == nil || !errors.Is(err, errServer) {
		t.Fatalf("err = %v, want the last 500", err)
	}
	if got, want := api.count("ContainerInspect"), engine.DefaultRetry(Transient).Attempts; got != want {
		t.Errorf("called %d times, want %d", got, want)
	}
}

// The back-off doubles from the base: 5 attempts wait 1+2+4+8 units.
func TestRetryBacksOff(t *testing.T) {
	api := newFakeAPI()
	for range 5 {
		api.failFirst("ContainerStart", errReset)
	}
	begin := time.Now()
	_ = retried(api, 10*time.Millisecond).StartContainer(t.Context(), "x")
	if got, want := time.Since(begin), 150*time.Millisecond; got < want {
		t.Errorf("5 failing attempts took %s, want at least %s of back-off", got, want)
	}
}

// A cancelled context ends the retries at once.
func TestRetryStopsOnCancel(t *testing.T) {
	api := newFakeAPI()
	api.failFirst("ContainerStart", errReset, errReset)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- retried(api, time.Hour).StartContainer(ctx, "x") }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("cancelled retry returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retry ignored the cancellation")
	}
}

// Helper containers: no network, read-only source mounts that never copy
// image content in, no logs, and the labels clean looks for.
func TestCreateHelperIsolation(t *testing.T) {
	api := newFakeAPI()
	d := New(api, "test")
	_, err := d.CreateHelper(t.Context(), engine.HelperSpec{
		Image: "docker-autobackup-helper:test", Project: "shop",
		Mounts: []engine.Mount{{Volume: "shop_db", Target: "/v", ReadOnly: true}, {Volume: "stage", Target: "/s"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(api.create) != 1 {
		t.Fatalf("ContainerCreate called %d times", len(api.create))
	}
	c := api.create[0]
	if c.Host.NetworkMode != "none" || !c.Config.NetworkDisabled {
		t.Errorf("network: mode %q, disabled %v; want none, true", c.Host.NetworkMode, c.Config.NetworkDisabled)
	}
	if c.Config.Labels[engine.LabelHelper] != "true" || c.Config.Labels[engine.LabelProject] != "shop" {
		t.Errorf("labels %v, want %s=true and %s=shop", c.Config.Labels, engine.LabelHelper, engine.LabelProject)
	}
	if c.Host.LogConfig.Type != "none" {
		t.Errorf("log driver %q, want none (the volume's data must not land in logs)", c.Host.LogConfig.Type)
	}
	if c.Host.Privileged || len(c.Host.CapAdd) > 0 || len(c.Host.Binds) > 0 {
		t.Errorf("helper has privileges or binds: %+v", c.Host)
	}
	if len(c.Host.Mounts) != 2 {
		t.Fatalf("mounts %+v", c.Host.Mounts)
	}
	src, stage := c.Host.Mounts[0], c.Host.Mounts[1]
	if src.Source != "shop_db" || src.Target != "/v" || !src.ReadOnly || src.Type != "volume" {
		t.Errorf("source mount %+v, want volume shop_db read-only at /v", src)
	}
	if src.VolumeOptions == nil || !src.VolumeOptions.NoCopy {
		t.Errorf("source mount without NoCopy: %+v", src.VolumeOptions)
	}
	if stage.ReadOnly {
		t.Errorf("staging mount is read-only: %+v", stage)
	}

	// A started helper keeps its (short) output, still without network.
	if _, err := d.CreateHelper(t.Context(), engine.HelperSpec{Image: "i", Project: "shop", Cmd: []string{"/autobackup", "__helper"}, KeepLogs: true}); err != nil {
		t.Fatal(err)
	}
	if c := api.create[1]; c.Host.NetworkMode != "none" || c.Host.LogConfig.Type != "json-file" || c.Config.Labels[engine.LabelHelper] != "true" {
		t.Errorf("running helper: %+v %+v", c.Host, c.Config.Labels)
	}
}

// TestCreateHelperCancelledLeavesNothing: a caller cancelled while the
// engine creates a helper gets an error, and the helper the engine made
// anyway is removed rather than left holding the volume.
func TestCreateHelperCancelledLeavesNothing(t *testing.T) {
	api := newFakeAPI()
	ctx, cancel := context.WithCancel(context.Background())
	api.onCreate = func(context.Context) { cancel() }
	_, err := New(api, "test").CreateHelper(ctx, engine.HelperSpec{Image: "img", Project: "p"})
	if err == nil {
		t.Fatal("CreateHelper succeeded for a cancelled caller")
	}
	if got := api.count("ContainerRemove"); got != 1 {
		t.Errorf("ContainerRemove called %d times, want 1 (the helper the engine created)", got)
	}
}

// Calls that are not idempotent are made once, whatever the error: a
// second create or exec would do the work twice.
func TestRetryNotForNonIdempotentCalls(t *testing.T) {
	api := newFakeAPI()
	d := retried(api, time.Millisecond)
	api.failFirst("ContainerCreate", errReset)
	if _, err := d.CreateHelper(t.Context(), engine.HelperSpec{Image: "img", Project: "p"}); err == nil {
		t.Error("create with a reset connection: no error")
	}
	if got := api.count("ContainerCreate"); got != 1 {
		t.Errorf("ContainerCreate called %d times, want 1 (no retry)", got)
	}
}
