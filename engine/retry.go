package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Retry bounds: up to 5 attempts, 200 ms doubling to 3.2 s between them.
var (
	retryAttempts = 5
	retryBase     = 200 * time.Millisecond
)

// transient reports whether err is worth retrying: the connection to the
// engine broke, or the engine answered with a server-side (5xx) error.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) || errdefs.IsConflict(err) ||
		errdefs.IsPermissionDenied(err) || errdefs.IsUnauthorized(err) || errdefs.IsNotModified(err) {
		return false
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errdefs.IsInternal(err) || errdefs.IsUnavailable(err) || errdefs.IsDeadlineExceeded(err)
}

// retry runs fn until it succeeds, fails with a non-transient error, the
// attempts are used up or ctx ends. Only for idempotent calls.
func retry(ctx context.Context, op string, fn func() error) error {
	wait := retryBase
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || !transient(err) || attempt >= retryAttempts {
			return err
		}
		slog.Warn("transient engine error, retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
