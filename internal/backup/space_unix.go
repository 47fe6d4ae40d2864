//go:build linux || darwin || freebsd

package backup

import "syscall"

// freeBytes returns the space available to an unprivileged writer in the
// file system holding dir; ok is false when it cannot be measured.
func freeBytes(dir string) (free int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
