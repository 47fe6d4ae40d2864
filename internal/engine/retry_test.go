package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

var errHiccup = errors.New("connection reset")

func transient(err error) bool { return errors.Is(err, errHiccup) }

func policy(base time.Duration) engine.RetryPolicy {
	p := engine.DefaultRetry(transient)
	p.Base = base
	return p
}

// failing makes the next n calls of one fake method fail with errHiccup.
type failing struct{ n int }

func (f *failing) next() error {
	if f.n > 0 {
		f.n--
		return errHiccup
	}
	return nil
}

// Every idempotent call is retried through a transient error; the others
// are made exactly once.
func TestWithRetry(t *testing.T) {
	ctx := t.Context()
	fake := enginetest.New(&enginetest.Container{Container: engine.Container{ID: "db-1", Service: "db", Project: "p", State: "running"}})
	fake.AddVolume(engine.VolumeInfo{Name: "v", Driver: "local"})
	e := engine.WithRetry(fake, policy(time.Millisecond))

	stop := &failing{n: 3}
	fake.StopFn = func(ctx context.Context, id string, timeout time.Duration) error {
		if err := stop.next(); err != nil {
			return err
		}
		return fake.DefaultStop(ctx, id, timeout)
	}
	if err := e.StopContainer(ctx, "db-1", time.Second); err != nil {
		t.Fatalf("stop through 3 hiccups: %v", err)
	}
	if got := len(fake.Ops("stop")); got != 4 {
		t.Errorf("stop made %d times, want 4", got)
	}

	vol := &failing{n: 1}
	fake.VolumeFn = func(ctx context.Context, name string) (engine.VolumeInfo, error) {
		if err := vol.next(); err != nil {
			return engine.VolumeInfo{}, err
		}
		return fake.DefaultVolume(ctx, name)
	}
	if v, err := e.Volume(ctx, "v"); err != nil || v.Name != "v" {
		t.Errorf("volume through a hiccup: %+v, %v", v, err)
	}

	fake.CreateHelperFn = func(context.Context, engine.HelperSpec) (string, error) { return "", errHiccup }
	if _, err := e.CreateHelper(ctx, engine.HelperSpec{}); !errors.Is(err, errHiccup) {
		t.Errorf("create helper: %v, want the hiccup", err)
	}
	if got := len(fake.Ops("create-helper")); got != 1 {
		t.Errorf("create helper made %d times, want 1: a retry could leave a second helper", got)
	}
	fake.ExecFn = func(context.Context, string, engine.ExecSpec) (int, string, error) { return -1, "", errHiccup }
	if _, _, err := e.Exec(ctx, "db-1", engine.ExecSpec{Cmd: []string{"true"}}); !errors.Is(err, errHiccup) {
		t.Errorf("exec: %v, want the hiccup", err)
	}
	if got := len(fake.Ops("exec")); got != 1 {
		t.Errorf("exec made %d times, want 1", got)
	}
}

// Retries are bounded, stop at a final error and at a cancelled context.
func TestWithRetryBounds(t *testing.T) {
	fake := enginetest.New()
	calls := 0
	fake.InspectFn = func(context.Context, string) (engine.Status, error) { calls++; return engine.Status{}, errHiccup }
	if _, err := engine.WithRetry(fake, policy(time.Millisecond)).InspectContainer(t.Context(), "x"); !errors.Is(err, errHiccup) {
		t.Fatalf("err = %v", err)
	}
	if want := engine.DefaultRetry(transient).Attempts; calls != want {
		t.Errorf("%d attempts, want %d", calls, want)
	}

	calls = 0
	fake.InspectFn = func(context.Context, string) (engine.Status, error) {
		calls++
		return engine.Status{}, engine.ErrNotFound
	}
	if _, err := engine.WithRetry(fake, policy(time.Millisecond)).InspectContainer(t.Context(), "x"); !errors.Is(err, engine.ErrNotFound) || calls != 1 {
		t.Errorf("not found: %v after %d calls, want it at once", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	fake.InspectFn = func(context.Context, string) (engine.Status, error) { cancel(); return engine.Status{}, errHiccup }
	done := make(chan error, 1)
	go func() {
		_, err := engine.WithRetry(fake, policy(time.Hour)).InspectContainer(ctx, "x")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errHiccup) {
			t.Errorf("cancelled: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry ignored the cancellation")
	}
}
