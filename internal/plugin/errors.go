package plugin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/docker/cli/cli"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// errUsage marks errors the user fixes by changing the command line or the
// configuration: exit code 2.
var errUsage = errors.New("usage")

type usageErr struct{ err error }

func (e usageErr) Error() string           { return e.err.Error() }
func (e usageErr) Unwrap() []error         { return []error{e.err, errUsage} }
func usageError(err error) error           { return usageErr{err} }
func usageErrorf(f string, a ...any) error { return usageError(fmt.Errorf(f, a...)) }

// hintError is an error in what the user asked for (exit code 2) that
// comes with the command that does what they probably meant.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

// rewordedErr is err (for errors.Is) told in words of the plugin's own,
// for an error whose text repeats what the plugin already says.
type rewordedErr struct {
	msg string
	err error
}

func (e rewordedErr) Error() string { return e.msg }
func (e rewordedErr) Unwrap() error { return e.err }
func reworded(err error, msg string) error {
	return rewordedErr{msg: msg, err: err}
}

// exitCodeErr carries an exit code 1 with a message already worded for the
// user (e.g. "verify: 1 of 3 archives is corrupt").
type exitCodeErr struct {
	err  error
	code int
}

func (e exitCodeErr) Error() string { return e.err.Error() }
func (e exitCodeErr) Unwrap() error { return e.err }

// exitError is the one place that turns an error into what the user sees
// (message and hint) and the exit code. The plugin framework prints the
// Status of the returned cli.StatusError and exits with its code.
func exitError(err error) error {
	if err == nil {
		return nil
	}
	var st cli.StatusError
	if errors.As(err, &st) {
		return err
	}
	code, msg := classify(err)
	return cli.StatusError{Cause: err, Status: msg, StatusCode: code}
}

func classify(err error) (int, string) {
	msg := "autobackup: " + err.Error()
	var restart *compose.RestartError
	var parse *state.ParseError
	var ec exitCodeErr
	var he hintError
	var ie app.InterruptedError
	switch {
	case errors.As(err, &ie) && !errors.As(err, &restart):
		return signalExitCode(ie.Cause), "autobackup: " + ie.Error()
	case errors.As(err, &he):
		return ExitUsage, msg + "\nTry: " + he.hint
	case errors.As(err, &restart):
		return ExitNotBack, msg + "\n\n!!! SERVICES ARE NOT BACK UP: " + strings.Join(restart.Services(), ", ") + " !!!\n" +
			"Check them now: docker compose ps; docker compose logs " + strings.Join(restart.Services(), " ") + "\n" +
			"Try: docker compose up -d --wait"
	case errors.As(err, &ec):
		return ec.code, msg
	case errors.As(err, &parse):
		return ExitUsage, msg
	case errors.Is(err, errUsage), errors.Is(err, compose.ErrInvalidProject), errors.Is(err, app.ErrConfig):
		return ExitUsage, msg
	case errors.Is(err, compose.ErrNoProject):
		return ExitUsage, msg
	case errors.Is(err, state.ErrLocked):
		return ExitFailed, msg
	case errors.Is(err, archive.ErrNotFound):
		return ExitUsage, msg + "\nTry: docker autobackup list"
	case errors.Is(err, backup.ErrUsage):
		return ExitUsage, msg
	case errors.Is(err, backup.ErrInUse):
		return ExitFailed, msg
	case errors.Is(err, backup.ErrVerify):
		return ExitFailed, msg + "\nTry: docker autobackup verify --all; restore an older backup: docker autobackup list"
	case errors.Is(err, backup.ErrPreflight):
		return ExitFailed, msg
	}
	return ExitFailed, msg
}
