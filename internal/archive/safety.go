package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"
)

// SafetyOptions relaxes the tar safety rules.
type SafetyOptions struct {
	// AllowDevices accepts character and block device entries.
	AllowDevices bool
}

// Rooted is Sanitize with every accepted entry renamed under root: "./a"
// becomes "root/a", the root entry "./" becomes "root", and hard link
// targets move along. Extracting the result into the parent of a volume's
// mount point applies the archived root's mode, owner and mtime to the
// mount point itself, which extracting "./" into it does not.
func Rooted(ctx context.Context, dst io.Writer, src io.Reader, opts SafetyOptions, root string) error {
	tw := tar.NewWriter(dst)
	rename := func(h *tar.Header) *tar.Header {
		c := *h
		c.Name = underRoot(root, h.Name)
		if h.Typeflag == tar.TypeLink {
			c.Linkname = underRoot(root, h.Linkname)
		}
		return &c
	}
	if _, err := scanTarRename(ctxReader{ctx: ctx, r: src}, tw, opts, ctx.Err, rename); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar end marker: %w", err)
	}
	return nil
}

func underRoot(root, name string) string {
	clean := path.Clean("/" + name) // entries were checked: no escapes
	if clean == "/" {
		return root
	}
	return root + clean
}

// Stats counts what a tar stream holds. Bytes is the total size of the
// regular files' contents.
type Stats struct {
	Entries, Files, Dirs, Symlinks, Hardlinks int
	Bytes                                     int64
}

// UnsafeEntryError is returned for a tar entry that must not be extracted
// into a volume. Callers can detect it with errors.As.
type UnsafeEntryError struct {
	Name   string // the entry's name as stored in the archive
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("entry %q: %s", e.Name, e.Reason)
}

// ErrNoEndMarker is returned for a tar stream that stops at an entry
// boundary without the end-of-archive blocks, which is what a truncated
// stream usually looks like.
var ErrNoEndMarker = errors.New("tar stream ends without the end-of-archive marker (truncated?)")

// CheckTar reads the tar stream r to its end and checks every entry against
// the safety rules (see Sanitize). It returns what it counted up to the
// first problem.
func CheckTar(r io.Reader, opts SafetyOptions) (Stats, error) {
	return scanTar(r, nil, opts, func() error { return nil })
}

// Sanitize copies the tar stream src to dst entry by entry, checking each
// entry before any of it is written. It refuses, with an
// *UnsafeEntryError:
//   - absolute names, NUL in names, and ".." that leaves the volume root;
//   - entries whose path goes through a symlink created earlier in the
//     archive (writing through a symlink), and entries that replace the root;
//   - hard links whose target is absolute, escapes, goes through a symlink
//     or is not an earlier regular file (or hard link) in the archive;
//   - character and block devices unless opts.AllowDevices;
//   - every type other than regular files, directories, symlinks, hard
//     links, FIFOs and devices (GNU sparse, multi-volume, global headers…).
//
// Symlink targets themselves may be absolute or dangling. Names of the
// form "./a/b" and the root entry "./" are accepted. A stream without the
// end-of-archive marker gives ErrNoEndMarker.
//
// On error dst holds a partial stream without the end marker; the caller
// must treat the whole copy as failed. ctx cancels between reads.
func Sanitize(ctx context.Context, dst io.Writer, src io.Reader, opts SafetyOptions) error {
	tw := tar.NewWriter(dst)
	if _, err := scanTar(ctxReader{ctx: ctx, r: src}, tw, opts, ctx.Err); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar end marker: %w", err)
	}
	return nil
}

// scanTar checks src and, if tw is not nil, copies every accepted entry to
// it. cancelled reports why src stopped early, if it was cancelled.
func scanTar(src io.Reader, tw *tar.Writer, opts SafetyOptions, cancelled func() error) (Stats, error) {
	return scanTarRename(src, tw, opts, cancelled, nil)
}

func scanTarRename(src io.Reader, tw *tar.Writer, opts SafetyOptions, cancelled func() error, rename func(*tar.Header) *tar.Header) (Stats, error) {
	var fn func(hdr *tar.Header, content io.Reader) error
	if tw != nil {
		fn = func(hdr *tar.Header, content io.Reader) error {
			out := outputHeader(hdr)
			if rename != nil {
				out = rename(out)
			}
			if err := tw.WriteHeader(out); err != nil {
				return fmt.Errorf("write header: %w", err)
			}
			_, err := io.Copy(tw, content)
			return err
		}
	}
	return scan(src, opts, cancelled, fn)
}

// ScanTar reads the tar stream r to its end, checks every entry against the
// safety rules of Sanitize before fn sees it, and calls fn (if not nil) with
// each accepted entry and its content. What fn leaves unread is skipped.
// An error from fn stops the scan and is returned with the entry's name.
func ScanTar(r io.Reader, opts SafetyOptions, fn func(hdr *tar.Header, content io.Reader) error) (Stats, error) {
	return scan(r, opts, func() error { return nil }, fn)
}

func scan(src io.Reader, opts SafetyOptions, cancelled func() error, fn func(hdr *tar.Header, content io.Reader) error) (Stats, error) {
	var st Stats
	er := &eofReader{r: src}
	tr := tar.NewReader(er)
	c := newChecker(opts)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if er.hitEOF {
				return st, ErrNoEndMarker
			}
			return st, nil
		}
		if err != nil {
			if ctxErr := cancelled(); ctxErr != nil {
				return st, ctxErr
			}
			return st, fmt.Errorf("read tar after %d entries: %w", st.Entries, unexpected(err))
		}
		if err := c.check(hdr); err != nil {
			return st, err
		}
		st.Entries++
		switch hdr.Typeflag {
		case tar.TypeReg:
			st.Files++
		case tar.TypeDir:
			st.Dirs++
		case tar.TypeSymlink:
			st.Symlinks++
		case tar.TypeLink:
			st.Hardlinks++
		}
		content := &countReader{r: tr}
		if fn != nil {
			if err := fn(hdr, content); err != nil {
				if ctxErr := cancelled(); ctxErr != nil {
					return st, ctxErr
				}
				return st, fmt.Errorf("entry %q: %w", hdr.Name, unexpected(err))
			}
		}
		_, err = io.Copy(io.Discard, content)
		if hdr.Typeflag == tar.TypeReg {
			st.Bytes += content.n
		}
		if err != nil {
			if ctxErr := cancelled(); ctxErr != nil {
				return st, ctxErr
			}
			return st, fmt.Errorf("entry %q: read content: %w", hdr.Name, unexpected(err))
		}
	}
}

// unexpected gives the truncation error a readable meaning.
func unexpected(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("stream truncated: %w", err)
	}
	return err
}

// outputHeader drops the GNU sparse records the reader has already applied:
// the content it returns is expanded, so writing them again would be wrong.
func outputHeader(hdr *tar.Header) *tar.Header {
	sparse := false
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			sparse = true
			break
		}
	}
	if !sparse {
		return hdr
	}
	h := *hdr
	h.PAXRecords = maps.Clone(hdr.PAXRecords)
	maps.DeleteFunc(h.PAXRecords, func(k, _ string) bool { return strings.HasPrefix(k, "GNU.sparse.") })
	return &h
}

// eofReader notes when the tar reader asked for more data and found none:
// after a complete archive it never does, since it stops at the end marker.
type eofReader struct {
	r      io.Reader
	hitEOF bool
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n == 0 && err == io.EOF {
		r.hitEOF = true
	}
	return n, err
}

// kind is what an earlier entry left at a path.
type kind uint8

const (
	kindOther kind = iota
	kindFile       // regular file or hard link to one
	kindDir
	kindSymlink
)

// checker applies the safety rules, remembering what earlier entries
// created so later ones cannot write through a symlink or link to nothing.
type checker struct {
	opts  SafetyOptions
	paths map[string]kind // cleaned relative path -> what was extracted there
}

func newChecker(opts SafetyOptions) *checker {
	return &checker{opts: opts, paths: map[string]kind{}}
}

func (c *checker) check(hdr *tar.Header) error {
	unsafe := func(format string, args ...any) error {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf(format, args...)}
	}
	k := kindOther
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeLink:
		k = kindFile
	case tar.TypeDir:
		k = kindDir
	case tar.TypeSymlink:
		k = kindSymlink
	case tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if !c.opts.AllowDevices {
			return unsafe("device node (%s) refused; devices are only restored when allowed", TypeName(hdr.Typeflag))
		}
	default:
		return unsafe("unsupported entry type %s", TypeName(hdr.Typeflag))
	}

	name, err := c.resolve(hdr.Name)
	if err != nil {
		return unsafe("%s", err)
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return unsafe("%s would replace the volume root", TypeName(hdr.Typeflag))
	}
	if strings.ContainsRune(hdr.Linkname, 0) {
		return unsafe("link target contains NUL")
	}
	if hdr.Typeflag == tar.TypeLink {
		target, err := c.resolve(hdr.Linkname)
		if err != nil {
			return unsafe("hard link target %q: %s", hdr.Linkname, err)
		}
		if target == name {
			return unsafe("hard link to itself")
		}
		if c.paths[target] != kindFile {
			return unsafe("hard link target %q is not an earlier regular file in the archive", hdr.Linkname)
		}
	}
	c.paths[name] = k
	return nil
}

// resolve cleans an entry name relative to the volume root, refusing
// absolute names, NUL, ".." above the root and passing through a symlink
// an earlier entry created. The root itself is ".".
func (c *checker) resolve(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.ContainsRune(name, 0):
		return "", errors.New("name contains NUL")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute path")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." {
			continue
		}
		// Anything after a component, even "..", is resolved through it.
		if len(parts) > 0 {
			if prefix := strings.Join(parts, "/"); c.paths[prefix] == kindSymlink {
				return "", fmt.Errorf("path goes through symlink %q", prefix)
			}
		}
		if p == ".." {
			if len(parts) == 0 {
				return "", errors.New("path escapes the volume")
			}
			parts = parts[:len(parts)-1]
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// TypeName names a tar entry type for messages.
func TypeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file ('7')"
	case tar.TypeXGlobalHeader:
		return "pax global header ('g')"
	case tar.TypeGNUSparse:
		return "GNU sparse file ('S')"
	}
	if t >= 0x20 && t < 0x7f {
		return fmt.Sprintf("%q", rune(t))
	}
	return fmt.Sprintf("0x%02x", t)
}
