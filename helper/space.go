package helper

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Space is what the staged mode needs to know before it copies a volume
// into its staging volume: how much the source holds, how much the staging
// copy already holds, and how much room is left where it lives.
type Space struct {
	SrcBytes   int64 `json:"src_bytes"`
	StageBytes int64 `json:"stage_bytes"`
	FreeBytes  int64 `json:"free_bytes"`
}

// Need is how many more bytes the staging copy may take: the difference,
// plus 5% of the source for metadata and temporary files.
func (s Space) Need() int64 {
	need := s.SrcBytes - s.StageBytes
	if need < 0 {
		need = 0
	}
	return need + s.SrcBytes/20
}

// MeasureSpace measures src and stage (allocated blocks, so sparse files
// count as what they use) and the free space of stage's file system.
func MeasureSpace(src, stage string) (Space, error) {
	var sp Space
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

// SpaceMain is `__helper space SRC STAGE`: one JSON line on stdout.
func SpaceMain(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: __helper space SRC STAGE")
	}
	if _, err := os.Stat(args[1]); err != nil {
		return err
	}
	sp, err := MeasureSpace(args[0], args[1])
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(sp)
}
