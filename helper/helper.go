package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Arg is the first argument that selects helper mode.
const Arg = "__helper"

// Is reports whether args (os.Args) ask for helper mode.
func Is(args []string) bool { return len(args) > 1 && args[1] == Arg }

// Main runs a helper command from os.Args and returns the exit code.
func Main(args []string, stderr io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintln(stderr, "usage: __helper wipe DIR")
		return 2
	}
	var err error
	switch args[2] {
	case "wipe":
		if len(args) != 4 {
			err = errors.New("usage: __helper wipe DIR")
			break
		}
		err = Wipe(args[3])
	case "sync":
		err = SyncMain(args[3:], os.Stdout)
	case "space":
		err = SpaceMain(args[3:], os.Stdout)
	case "pack":
		err = PackMain(args[3:], os.Stdout)
	case "unpack":
		err = UnpackMain(args[3:], os.Stdout)
	case "serve":
		// Keep the container running for exec'd commands until it is
		// stopped or removed.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
	default:
		err = fmt.Errorf("unknown helper command %q", args[2])
	}
	if err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		if errors.Is(err, ErrNotShared) {
			return ExitNotShared
		}
		return 1
	}
	return 0
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
