package engine

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// RetryPolicy bounds the retries of WithRetry.
type RetryPolicy struct {
	Attempts int           // tries in all, the first included
	Base     time.Duration // wait after the first failure, doubled after each
	// Transient says whether an error is worth another try; an error it
	// does not recognise is final.
	Transient func(error) bool
}

// DefaultRetry is up to 5 attempts, 200 ms doubling to 1.6 s between
// them: about 3 s in all, enough for an engine restarting or a socket
// briefly refusing.
func DefaultRetry(transient func(error) bool) RetryPolicy {
	return RetryPolicy{Attempts: 5, Base: 200 * time.Millisecond, Transient: transient}
}

// WithRetry wraps e so that its idempotent calls (as engine.Engine's
// comments say which) are retried on transient errors. The others pass
// through: running a command twice, or creating a second helper, is worse
// than failing once.
func WithRetry(e Engine, p RetryPolicy) Engine { return &retrying{e: e, p: p} }

type retrying struct {
	e Engine
	p RetryPolicy
}

var _ Engine = (*retrying)(nil)

// do runs fn until it succeeds, fails with a final error, the attempts are
// used up or ctx ends.
func (r *retrying) do(ctx context.Context, op string, fn func() error) error {
	wait := r.p.Base
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || r.p.Transient == nil || !r.p.Transient(err) || attempt >= r.p.Attempts || ctx.Err() != nil {
			return err
		}
		slog.Warn("transient engine error, retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

// retry1 is do for calls that return a value.
func retry1[T any](ctx context.Context, r *retrying, op string, fn func() (T, error)) (T, error) {
	var v T
	err := r.do(ctx, op, func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

func (r *retrying) Containers(ctx context.Context, project string) ([]Container, error) {
	return retry1(ctx, r, "list containers", func() ([]Container, error) { return r.e.Containers(ctx, project) })
}

func (r *retrying) VolumeUsers(ctx context.Context, volume string) ([]Container, error) {
	return retry1(ctx, r, "list containers", func() ([]Container, error) { return r.e.VolumeUsers(ctx, volume) })
}

func (r *retrying) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	return r.do(ctx, "stop container", func() error { return r.e.StopContainer(ctx, id, timeout) })
}

func (r *retrying) StartContainer(ctx context.Context, id string) error {
	return r.do(ctx, "start container", func() error { return r.e.StartContainer(ctx, id) })
}

func (r *retrying) InspectContainer(ctx context.Context, id string) (Status, error) {
	return retry1(ctx, r, "inspect container", func() (Status, error) { return r.e.InspectContainer(ctx, id) })
}

func (r *retrying) Volume(ctx context.Context, name string) (VolumeInfo, error) {
	return retry1(ctx, r, "inspect volume", func() (VolumeInfo, error) { return r.e.Volume(ctx, name) })
}

func (r *retrying) CreateVolume(ctx context.Context, v VolumeInfo) error {
	return r.e.CreateVolume(ctx, v)
}

func (r *retrying) ImageDigests(ctx context.Context, imageID string) ([]string, error) {
	return retry1(ctx, r, "inspect image", func() ([]string, error) { return r.e.ImageDigests(ctx, imageID) })
}

func (r *retrying) HelperImage(ctx context.Context) (HelperImage, error) {
	return retry1(ctx, r, "helper image", func() (HelperImage, error) { return r.e.HelperImage(ctx) })
}

func (r *retrying) ProbeHelper(ctx context.Context) (HelperImage, error) {
	return retry1(ctx, r, "probe helper", func() (HelperImage, error) { return r.e.ProbeHelper(ctx) })
}

func (r *retrying) CreateHelper(ctx context.Context, spec HelperSpec) (string, error) {
	return r.e.CreateHelper(ctx, spec)
}

func (r *retrying) CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	return retry1(ctx, r, "copy from container", func() (io.ReadCloser, error) { return r.e.CopyFrom(ctx, id, path) })
}

func (r *retrying) CopyTo(ctx context.Context, id, path string, rd io.Reader) error {
	return r.e.CopyTo(ctx, id, path, rd)
}

func (r *retrying) RunHelper(ctx context.Context, id string) (int, string, error) {
	return r.e.RunHelper(ctx, id)
}

func (r *retrying) Exec(ctx context.Context, id string, spec ExecSpec) (int, string, error) {
	return r.e.Exec(ctx, id, spec)
}

func (r *retrying) RemoveHelper(ctx context.Context, id string) error {
	return r.do(ctx, "remove helper", func() error { return r.e.RemoveHelper(ctx, id) })
}

func (r *retrying) Helpers(ctx context.Context) ([]string, error) {
	return retry1(ctx, r, "list helpers", func() ([]string, error) { return r.e.Helpers(ctx) })
}

func (r *retrying) CleanProject(ctx context.Context, project string) ([]string, error) {
	return retry1(ctx, r, "clean project", func() ([]string, error) { return r.e.CleanProject(ctx, project) })
}

func (r *retrying) CollectStaging(ctx context.Context) ([]string, error) {
	return retry1(ctx, r, "collect staging volumes", func() ([]string, error) { return r.e.CollectStaging(ctx) })
}

func (r *retrying) CleanHelperImages(ctx context.Context, keep string) ([]string, error) {
	return retry1(ctx, r, "clean helper images", func() ([]string, error) { return r.e.CleanHelperImages(ctx, keep) })
}
