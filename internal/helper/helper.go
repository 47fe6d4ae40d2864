package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// Is reports whether args (os.Args) ask for helper mode.
func Is(args []string) bool { return len(args) > 1 && args[1] == protocol.Arg }

// Main runs a helper command from os.Args and returns the exit code.
func Main(args []string, stderr io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintln(stderr, "usage: __helper CMD [ARGS]")
		return 2
	}
	err := run(args[2:], os.Stdout)
	if err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		if errors.Is(err, ErrNotShared) {
			return protocol.ExitNotShared
		}
		return 1
	}
	return 0
}

// run decodes and runs one request; its output goes to stdout.
func run(args []string, stdout io.Writer) error {
	req, err := protocol.Decode(args)
	if err != nil {
		return err
	}
	switch r := req.(type) {
	case *protocol.Wipe:
		return Wipe(r.Dir)
	case *protocol.Sync:
		return runSync(r, stdout)
	case *protocol.Space:
		return runSpace(r, stdout)
	case *protocol.Pack:
		return runPack(r, stdout)
	case *protocol.Unpack:
		return runUnpack(r, stdout)
	case *protocol.Serve:
		// Keep the container running for exec'd commands until it is
		// stopped or removed.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		return nil
	}
	return fmt.Errorf("helper command %q is not implemented", req.Command())
}

// Wipe removes everything inside dir but keeps dir itself (it is a volume's
// mount point). Symlinks are removed, never followed.
func Wipe(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
