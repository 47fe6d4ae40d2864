package helper

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/iocount"
)

// UnpackMain runs `__helper unpack` with the arguments after "unpack": it
// makes DIR hold exactly the tree of the archive ARCHIVE. The archive must
// have the given size and SHA-256, checked before DIR is touched: a helper
// that sees another file under the same path (or none) returns
// ErrNotShared and leaves DIR alone.
func UnpackMain(args []string, stdout io.Writer) error {
	var r protocol.Unpack
	if err := protocol.DecodeArgs(&r, args); err != nil {
		return err
	}
	return runUnpack(&r, stdout)
}

func runUnpack(r *protocol.Unpack, stdout io.Writer) error {
	var report func(int64)
	if r.Progress > 0 {
		report = func(n int64) { _ = protocol.WriteProgress(stdout, protocol.Progress{Bytes: n}) }
	}
	res, err := Unpack(r.Archive, r.Dir, r.SHA256, r.Size, archive.SafetyOptions{AllowDevices: r.AllowDevices}, report, r.Progress)
	if err != nil {
		return err
	}
	return protocol.WriteResult(stdout, res)
}

// Unpack makes dir hold exactly the tree in the archive at path
// (zstd-compressed tar). The archive's size and SHA-256 are checked first;
// a mismatch returns ErrNotShared before dir is touched. Every entry is
// checked against the safety rules of archive.Sanitize before it is
// written, and every file operation goes through an os.Root on dir, so
// nothing in the archive or already in dir can make it write outside dir.
// The archive's root entry gives dir its owner, mode and mtime. report,
// when set, gets the tar bytes read so far at most every every.
//
// dir is updated in place, because a restore usually goes back to a backup
// the volume still mostly matches (a failed upgrade): a regular file that
// is there with a single link is compared with the archive 1 MiB at a time
// and only the chunks that differ are written; symlinks and directories
// that match are kept; anything else in the way is replaced; and whatever
// the archive does not hold is removed at the end.
func Unpack(path, dir, wantSum string, wantSize int64, opts archive.SafetyOptions, report func(int64), every time.Duration) (protocol.UnpackResult, error) {
	start := time.Now()
	var res protocol.UnpackResult
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if notVisible(err) {
		return res, ErrNotShared
	}
	if err != nil {
		return res, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return res, err
	} else if !fi.Mode().IsRegular() || fi.Size() != wantSize {
		return res, ErrNotShared
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != wantSum {
		return res, ErrNotShared
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}

	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, err
	}
	defer root.Close()
	h.Reset()
	dec, err := archive.NewDecoder(io.TeeReader(f, h))
	if err != nil {
		return res, err
	}
	defer dec.Close()
	x := &extractor{root: root, buf: make([]byte, chunk), old: make([]byte, chunk), chown: os.Geteuid() == 0, keep: map[string]bool{".": true}}
	st, err := archive.ScanTar(&iocount.Reader{R: dec, Report: report, Every: every}, opts, x.entry)
	if err != nil {
		return res, err
	}
	removed, err := x.removeExtras()
	if err != nil {
		return res, err
	}
	if err := x.finish(); err != nil {
		return res, err
	}
	// The file was read twice; it must not have changed in between.
	if _, err := io.Copy(h, f); err != nil {
		return res, err
	}
	if hex.EncodeToString(h.Sum(nil)) != wantSum {
		return res, fmt.Errorf("archive %s changed while it was restored; restore again", path)
	}
	res.Entries, res.Files, res.Bytes = st.Entries, st.Files, st.Bytes
	res.Written, res.Removed = x.written, removed
	res.Duration = time.Since(start)
	return res, nil
}

// chunk is the unit in which existing files are compared and patched.
const chunk = 1 << 20

// extractor writes checked tar entries below root.
type extractor struct {
	root    *os.Root
	buf     []byte // archive content
	old     []byte // content already in the volume
	chown   bool
	dirs    []*tar.Header   // directory metadata is applied last, deepest first
	keep    map[string]bool // every path the archive holds
	written int64
}

func (x *extractor) entry(hdr *tar.Header, content io.Reader) error {
	rel := relName(hdr.Name)
	x.keep[rel] = true
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the archive's root is a %s, not a directory", archive.TypeName(hdr.Typeflag))
		}
		x.dirs = append(x.dirs, hdr)
		return nil
	}
	// What the volume already has there, looked at once.
	fi, err := x.root.Lstat(rel)
	have := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		if have && fi.IsDir() {
			x.dirs = append(x.dirs, hdr)
			return nil
		}
		if have {
			if err := x.root.RemoveAll(rel); err != nil {
				return err
			}
		}
		if err := x.root.Mkdir(rel, 0o700); err != nil {
			return err
		}
		x.dirs = append(x.dirs, hdr)
		return nil
	}
	if have {
		if kept, err := x.update(rel, fi, hdr, content); kept || err != nil {
			return err
		}
		// Anything else in the way (a directory, a hard-linked file, a
		// device, an earlier entry of the same name) is replaced.
		if err := x.root.RemoveAll(rel); err != nil {
			return err
		}
	}
	err = x.create(rel, hdr, content)
	if errors.Is(err, fs.ErrNotExist) && hdr.Typeflag != tar.TypeLink {
		// An archive made by hand may omit a parent directory.
		if merr := x.root.MkdirAll(filepath.Dir(rel), 0o755); merr == nil {
			err = x.create(rel, hdr, content)
		}
	}
	return err
}

func (x *extractor) create(rel string, hdr *tar.Header, content io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeReg:
		return x.file(rel, hdr, content)
	case tar.TypeLink:
		return x.root.Link(relName(hdr.Linkname), rel)
	case tar.TypeSymlink:
		if err := x.root.Symlink(hdr.Linkname, rel); err != nil {
			return err
		}
		return x.meta(rel, hdr, false)
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := x.at(rel, func(fd int, base string) error {
			return unix.Mknodat(fd, base, mode|0o600, int(dev))
		}); err != nil {
			return err
		}
		return x.meta(rel, hdr, true)
	}
	return fmt.Errorf("unsupported entry type %s", archive.TypeName(hdr.Typeflag))
}

// update brings fi, what is already at rel, in line with hdr when that can
// be done in place: a regular file with a single link (patched chunk by
// chunk) or the same symlink. It reports false, having changed nothing,
// when the entry must be created anew.
func (x *extractor) update(rel string, fi fs.FileInfo, hdr *tar.Header, content io.Reader) (bool, error) {
	switch hdr.Typeflag {
	case tar.TypeReg:
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || !ok || st.Nlink != 1 {
			return false, nil
		}
		return true, x.patch(rel, hdr, content)
	case tar.TypeSymlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		if target, err := x.root.Readlink(rel); err != nil || target != hdr.Linkname {
			return false, nil
		}
		return true, x.meta(rel, hdr, false)
	}
	return false, nil
}

// patch rewrites the regular file rel (one link, not followed) to hold
// content, writing only the chunks that differ, and sets its metadata.
func (x *extractor) patch(rel string, hdr *tar.Header, content io.Reader) error {
	f, err := x.root.OpenFile(rel, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	err = x.patchOpen(f, hdr, content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return x.root.Chtimes(rel, hdr.ModTime, hdr.ModTime)
}

func (x *extractor) patchOpen(f *os.File, hdr *tar.Header, content io.Reader) error {
	var off int64
	for off < hdr.Size {
		n, err := io.ReadFull(content, x.buf[:min(int64(len(x.buf)), hdr.Size-off)])
		if err != nil {
			return err
		}
		m, err := io.ReadFull(f, x.old[:n])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
		if m != n || !bytes.Equal(x.old[:n], x.buf[:n]) {
			if _, err := f.WriteAt(x.buf[:n], off); err != nil {
				return err
			}
			x.written += int64(n)
		}
		off += int64(n)
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Size() != hdr.Size {
		if err := f.Truncate(hdr.Size); err != nil {
			return err
		}
	}
	return x.fileMeta(f, hdr)
}

// fileMeta sets owner, mode and the capability attribute of an open file.
func (x *extractor) fileMeta(f *os.File, hdr *tar.Header) error {
	if x.chown {
		if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	// After the chown, which clears setuid and setgid.
	if err := f.Chmod(hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return err
	}
	if c, ok := hdr.PAXRecords["SCHILY.xattr."+capabilityXattr]; ok {
		return unix.Fsetxattr(int(f.Fd()), capabilityXattr, []byte(c), 0)
	}
	if err := unix.Fremovexattr(int(f.Fd()), capabilityXattr); err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	return nil
}

// removeExtras removes everything below the root the archive does not hold
// (a directory at once, with what is in it). Symlinks are removed, never
// followed.
func (x *extractor) removeExtras() (int, error) {
	removed := 0
	err := fs.WalkDir(x.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if x.keep[p] {
			return nil
		}
		if err := x.root.RemoveAll(p); err != nil {
			return err
		}
		removed++
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	return removed, err
}

func (x *extractor) file(rel string, hdr *tar.Header, content io.Reader) error {
	f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(content, hdr.Size), x.buf)
	x.written += n
	if err == nil {
		err = x.fileMeta(f, hdr)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return x.root.Chtimes(rel, hdr.ModTime, hdr.ModTime)
}

// meta sets owner, mode (unless a symlink) and mtime of rel without
// following it.
func (x *extractor) meta(rel string, hdr *tar.Header, chmod bool) error {
	return x.at(rel, func(fd int, base string) error {
		if x.chown {
			if err := unix.Fchownat(fd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		if chmod {
			if err := unix.Fchmodat(fd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
				return err
			}
		}
		ts := unix.NsecToTimespec(hdr.ModTime.UnixNano())
		return unix.UtimesNanoAt(fd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// at calls fn with a descriptor of rel's parent directory, opened through
// the root, and rel's last element.
func (x *extractor) at(rel string, fn func(fd int, base string) error) error {
	parent, err := x.root.Open(filepath.Dir(rel))
	if err != nil {
		return err
	}
	defer parent.Close()
	return fn(int(parent.Fd()), filepath.Base(rel))
}

// finish applies the directories' metadata, children before parents so
// that writing into a directory does not move its mtime afterwards.
func (x *extractor) finish() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		hdr := x.dirs[i]
		rel := relName(hdr.Name)
		if x.chown {
			if err := x.root.Lchown(rel, hdr.Uid, hdr.Gid); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}
		if err := x.root.Chmod(rel, hdr.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if err := x.root.Chtimes(rel, hdr.ModTime, hdr.ModTime); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	return nil
}

// onlyWriter hides *os.File's ReadFrom so the copy uses our large buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
