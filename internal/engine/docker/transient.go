package docker

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// Transient reports whether an error of this package's calls is worth
// retrying (see engine.WithRetry): the connection to the engine broke, or
// the engine answered with a server-side (5xx) error.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, engine.ErrNotFound) {
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
