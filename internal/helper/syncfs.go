package helper

import (
	"errors"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// openSource opens a source file for reading without following a symlink.
// Raw descriptors: os.File would try to register each one with the poller.
func openSource(path string) (int, error) {
	// O_NOATIME keeps the backup from touching atimes (allowed for the owner
	// and root); O_NONBLOCK keeps a FIFO swapped in since lstat from blocking.
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyData copies in to out until EOF: in the kernel with copy_file_range
// where it works, else through a large buffer.
func copyData(out, in int, size int64) (int64, error) {
	var total int64
	for {
		n, err := unix.CopyFileRange(in, nil, out, nil, 1<<30, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || (n == 0 && total == 0 && size > 0) {
			// EXDEV, ENOSYS, EOPNOTSUPP, EINVAL...: not between these
			// files. A first call returning 0 for a non-empty file means
			// a file system that does not implement it honestly.
			if total == 0 {
				break
			}
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += int64(n)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.Read(in, buf)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		for w := buf[:n]; len(w) > 0; {
			m, err := unix.Write(out, w)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total, err
			}
			w = w[m:]
			total += int64(m)
		}
	}
}

func setTimes(path string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// within reports whether path p is dir or below it (both absolute, clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func isType(st *unix.Stat_t, typ uint32) bool { return st.Mode&unix.S_IFMT == typ }

// vanished reports errors meaning the source entry went away or changed type
// between listing and reading, as files of running services do. The next
// pass sees the new state; the final pass runs with services stopped.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) ||
		errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EINVAL)
}

func readlink(path string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlink(path, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// syncFS flushes the filesystem holding dir: one syncfs instead of an
// fsync per written file.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); errors.Is(err, unix.ENOSYS) {
		unix.Sync()
	} else if err != nil {
		return err
	}
	return nil
}
