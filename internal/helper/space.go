package helper

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// MeasureSpace measures src and stage (allocated blocks, so sparse files
// count as what they use) and the free space of stage's file system.
func MeasureSpace(src, stage string) (protocol.SpaceResult, error) {
	var sp protocol.SpaceResult
	var err error
	if sp.SrcBytes, err = usage(src); err != nil {
		return sp, err
	}
	if sp.StageBytes, err = usage(stage); err != nil {
		return sp, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(stage, &st); err != nil {
		return sp, &fs.PathError{Op: "statfs", Path: stage, Err: err}
	}
	sp.FreeBytes = int64(st.Bavail) * st.Bsize
	sp.Reflink = preferClone(src, stage)
	return sp, nil
}

func usage(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // vanished while walking
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// SpaceMain runs `__helper space` with the arguments after "space": one
// result line on stdout.
func SpaceMain(args []string, stdout io.Writer) error {
	var r protocol.Space
	if err := protocol.DecodeArgs(&r, args); err != nil {
		return err
	}
	return runSpace(&r, stdout)
}

func runSpace(r *protocol.Space, stdout io.Writer) error {
	if _, err := os.Stat(r.Stage); err != nil {
		return err
	}
	sp, err := MeasureSpace(r.Src, r.Stage)
	if err != nil {
		return err
	}
	return protocol.WriteResult(stdout, sp)
}
