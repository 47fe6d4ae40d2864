package app

import (
	"context"
	"errors"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
)

// InterruptedError is what a use case whose context was cancelled (a
// signal, or the docker CLI closing the plugin's connection, which it does
// on Ctrl-C without a terminal) returns: one line saying what was
// interrupted and what state things are in.
type InterruptedError struct {
	What  string // "backup", "restore"
	Cause error  // context.Cause of the use case's context
	Err   error  // the use case's own error, for errors.Is/As
}

func (e InterruptedError) Error() string {
	how := "interrupted"
	if e.Cause != nil && !errors.Is(e.Cause, context.Canceled) {
		how = e.Cause.Error()
	}
	if e.What == "backup" {
		return e.What + " " + how + ": nothing was kept; every service that was stopped is running again"
	}
	return e.What + " " + how + ": the volumes being restored may hold part of the backup; every service that was stopped is running again. Run the restore again to finish it"
}

func (e InterruptedError) Unwrap() error { return e.Err }

// Interrupted turns the error of a use case whose context was cancelled
// into an InterruptedError, unless services are not back: that stays the
// urgent message it is.
func Interrupted(ctx context.Context, what string, err error) error {
	var restart *compose.RestartError
	if err == nil || ctx.Err() == nil || errors.As(err, &restart) {
		return err
	}
	return InterruptedError{What: what, Cause: context.Cause(ctx), Err: err}
}
