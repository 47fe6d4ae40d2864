package helper

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/iocount"
)

// ErrNotShared means the helper does not see the file the plugin prepared
// for it: the engine runs on another machine, or in a VM that does not
// share the folder, or sees another directory under the same path. The
// plugin then copies through the engine's API instead.
var ErrNotShared = errors.New("the helper does not see the plugin's file (engine on another machine, or the folder is not shared with it)")

// capabilityXattr is the one extended attribute archives keep: file
// capabilities (ping, some database binaries). Docker's archive keeps it too.
const capabilityXattr = "security.capability"

// PackMain runs `__helper pack` with the arguments after "pack": it
// writes SRC as a zstd-compressed tar into FILE, which the plugin created
// holding TOKEN, and prints a protocol.PackResult as one line. With
// --probe it only checks that FILE holds TOKEN.
func PackMain(args []string, stdout io.Writer) error {
	var r protocol.Pack
	if err := protocol.DecodeArgs(&r, args); err != nil {
		return err
	}
	return runPack(&r, stdout)
}

func runPack(r *protocol.Pack, stdout io.Writer) error {
	level := r.Level
	if level == 0 {
		level = archive.DefaultLevel
	}
	out, err := claim(r.File, r.Token)
	if err != nil {
		return err
	}
	if r.Probe {
		return out.Close()
	}
	// The archive overwrites the token and the file is then cut to the
	// archive's size. Truncating it to zero first would make ext4 start
	// writing the whole archive back when the file is closed (its
	// auto_da_alloc, for files replaced by truncation), right when the
	// services start again; their start then waits behind that writeback
	// (the engine fsyncs its own files): 0.3-0.9 s more downtime for a
	// 600 MB archive here. The plugin fsyncs the archive once they run.
	res, err := PackTo(r.Src, out, level, r.DropLarge)
	if err == nil {
		err = out.Truncate(res.ArchiveBytes)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return protocol.WriteResult(stdout, res)
}

// notVisible reports whether the plugin's file is missing or out of reach:
// an engine on another machine, or one that maps the helper's root to
// another user (userns-remap) or confines it (SELinux), which cannot open
// the plugin's 0700 directory.
func notVisible(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// claim opens the plugin's file, checks it holds token and returns it
// positioned at its start.
func claim(path, token string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if notVisible(err) {
		return nil, ErrNotShared
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	buf := make([]byte, len(token)+1)
	n, _ := io.ReadFull(f, buf)
	if string(buf[:n]) != token {
		_ = f.Close()
		return nil, ErrNotShared
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// PackTo writes the tree src as a zstd-compressed tar to w and returns its
// sizes. It computes no checksum: the plugin reads the file back for that
// while the services start again (archive.Pending.HashDirect). With drop,
// each regular file of at least boundaryMin bytes with one link is removed
// from src once its content is in the archive (protocol.Pack.DropLarge).
func PackTo(src string, w io.Writer, level int, drop bool) (protocol.PackResult, error) {
	var res protocol.PackResult
	out := &iocount.Writer{W: w}
	enc, err := archive.NewEncoder(out, level)
	if err != nil {
		return res, err
	}
	tarOut := &countingBoundary{Writer: iocount.Writer{W: enc}, enc: enc}
	entries, dropped, err := packTree(src, tarOut, drop)
	res.Dropped = dropped
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	res.Entries = entries
	res.TarBytes = tarOut.N
	res.ArchiveBytes = out.N
	return res, nil
}

// Pack writes the tree src as a tar stream to w, in the form the engine's
// archive endpoint gives for "src/.": the root as "./", then every entry
// below it as "./path" in lexical order, with numeric owners, permission
// and setuid/setgid/sticky bits, mtimes to the second, hard links as links
// to the first name seen, symlinks, FIFOs, device nodes and the
// security.capability attribute. Sockets are skipped, as no tar holds them.
// It returns the number of entries written.
func Pack(src string, w io.Writer) (int, error) {
	n, _, err := packTree(src, w, false)
	return n, err
}

// packTree is Pack; with drop it also removes each regular file of at
// least boundaryMin bytes with one link once its content is written, and
// returns how many it removed.
func packTree(src string, w io.Writer, drop bool) (int, int, error) {
	brk, _ := w.(boundaryWriter)
	dropped := 0
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	buf := make([]byte, 1<<20)
	entries := 0
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr := &tar.Header{
			Name:    "./" + filepath.ToSlash(rel),
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second),
		}
		if rel == "." {
			hdr.Name = "./"
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			if rel != "." {
				hdr.Name += "/"
			}
		case unix.S_IFREG:
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if st.Nlink > 1 {
				links[key] = hdr.Name
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
			if c, ok := capability(path); ok {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr." + capabilityXattr: c}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		case unix.S_IFCHR, unix.S_IFBLK:
			hdr.Typeflag = tar.TypeChar
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		default: // sockets
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		entries++
		if brk != nil && hdr.Typeflag == tar.TypeReg && hdr.Size >= boundaryMin {
			brk.Boundary()
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := copyFile(tw, path, hdr.Size, buf); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		// The content is in the encoder's hands: the clone can go.
		if drop && hdr.Typeflag == tar.TypeReg && hdr.Size >= boundaryMin && st.Nlink == 1 {
			if err := unix.Unlink(path); err != nil {
				return fmt.Errorf("%s: drop the clone: %w", rel, err)
			}
			dropped++
		}
		return nil
	})
	if err != nil {
		return entries, dropped, err
	}
	return entries, dropped, tw.Close()
}

// boundaryWriter is a writer that can start a new compression block
// (archive.Encoder). Pack starts one where the contents of each file of at
// least boundaryMin bytes begin.
type boundaryWriter interface {
	io.Writer
	Boundary()
}

const boundaryMin = 1 << 20

// copyFile copies exactly size bytes of the file at path.
func copyFile(w io.Writer, path string, size int64, buf []byte) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var done int64
	for done < size {
		n, err := f.Read(buf[:min(int64(len(buf)), size-done)])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			done += int64(n)
		}
		if err == io.EOF {
			return fmt.Errorf("file shrank from %d to %d bytes while it was read", size, done)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// capability returns the file's security.capability attribute, if any.
func capability(path string) (string, bool) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(path, capabilityXattr, buf)
	if err != nil || n <= 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// countingBoundary is a counter in front of an archive.Encoder.
type countingBoundary struct {
	iocount.Writer
	enc *archive.Encoder
}

func (c *countingBoundary) Boundary() { c.enc.Boundary() }

// relName turns an archive entry name ("./a/b/", "a/b", "./") into a path
// relative to the volume root ("a/b", "."). Entries were checked before, so
// it cannot leave the root.
func relName(name string) string {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if name == "" || name == "." {
		return "."
	}
	return filepath.Clean(name)
}
