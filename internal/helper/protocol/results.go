package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// A helper's stdout is lines of JSON objects: any number of progress lines
// ({"progress": Progress}) while it works, then one result line (the
// command's result object itself) once it is done. A result never has a
// "progress" key.

// Progress is how far a helper command got.
type Progress struct {
	Files int64 `json:"files"` // regular files done
	Bytes int64 `json:"bytes"` // their bytes (whether they had to be copied or not)
}

type progressLine struct {
	Progress *Progress `json:"progress"`
}

// WriteProgress writes p as one progress line.
func WriteProgress(w io.Writer, p Progress) error {
	return json.NewEncoder(w).Encode(progressLine{Progress: &p})
}

// WriteResult writes the command's result v as one line.
func WriteResult(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// isProgress reports whether line is a progress line, and decodes it.
func isProgress(line []byte) (Progress, bool) {
	if !bytes.Contains(line, []byte(`"progress"`)) {
		return Progress{}, false
	}
	var pl progressLine
	if json.Unmarshal(line, &pl) != nil || pl.Progress == nil {
		return Progress{}, false
	}
	return *pl.Progress, true
}

// ReadResult decodes into v the last result line of out, a helper's
// output (its stdout, or stdout and stderr together).
func ReadResult(out string, v any) error {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "{") {
			continue
		}
		if _, ok := isProgress([]byte(l)); ok {
			continue
		}
		return json.Unmarshal([]byte(l), v)
	}
	return fmt.Errorf("no result line in helper output %q", tail(out))
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

// Stream reads a helper's stdout as it arrives (it is an io.Writer, for
// engine.ExecSpec.Output): it calls a function for every progress line
// and keeps the result line for Result. It is safe for concurrent use.
type Stream struct {
	mu     sync.Mutex
	fn     func(Progress)
	buf    []byte
	result []byte
}

// NewStream returns a Stream that calls fn (if not nil) for every progress
// line.
func NewStream(fn func(Progress)) *Stream { return &Stream{fn: fn} }

// maxLine bounds what a Stream keeps of a line that does not end.
const maxLine = 1 << 20

func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.line(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	if len(s.buf) > maxLine {
		s.buf = s.buf[len(s.buf)-maxLine:]
	}
	return len(p), nil
}

func (s *Stream) line(l []byte) {
	l = bytes.TrimSpace(l)
	if len(l) == 0 || l[0] != '{' {
		return
	}
	if p, ok := isProgress(l); ok {
		if s.fn != nil {
			s.fn(p)
		}
		return
	}
	s.result = append(s.result[:0], l...)
}

// Result decodes the result line into v.
func (s *Stream) Result(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 { // a last line without its newline
		s.line(s.buf)
		s.buf = nil
	}
	if s.result == nil {
		return fmt.Errorf("no result line in the helper's output")
	}
	return json.Unmarshal(s.result, v)
}

// SyncStats is the result of a sync: one pass of helper.Sync.
type SyncStats struct {
	Files       int   `json:"files"`        // regular files in the source
	Dirs        int   `json:"dirs"`         // directories below the source root
	Symlinks    int   `json:"symlinks"`     // symbolic links in the source
	Special     int   `json:"special"`      // FIFOs and device nodes in the source
	Copied      int   `json:"copied"`       // files whose content was copied
	CopiedBytes int64 `json:"copied_bytes"` // bytes of content copied
	Linked      int   `json:"linked"`       // hard links (re)made in the mirror
	Created     int   `json:"created"`      // directories, symlinks, FIFOs, devices created
	Deleted     int   `json:"deleted"`      // mirror entries removed (a directory counts once)
	MetaUpdated int   `json:"meta_updated"` // entries whose owner, mode or times were fixed
	Vanished    int   `json:"vanished"`     // source entries gone or replaced while reading
	Skipped     int   `json:"skipped"`      // sockets, which no archive can hold
	// Patched files were brought up to date in place, block by block
	// (see helper/delta.go); PatchedBytes of their content was written,
	// of ComparedBytes read. Their bytes also count in CopiedBytes' place:
	// CopiedBytes is whole-file copies only.
	Patched       int   `json:"patched"`
	PatchedBytes  int64 `json:"patched_bytes"`
	ComparedBytes int64 `json:"compared_bytes"`
	// Clone says whole files were copied with copy_file_range on a file
	// system that shares extents (a reflink, not a copy of the bytes).
	Clone bool `json:"clone,omitempty"`
	// Deferred files (DeferredBytes of them) were left out by a DeferLarge
	// pass, for the pass while stopped to clone; Unshared of them had a
	// clone in the mirror, which the pass removed.
	Deferred      int   `json:"deferred,omitempty"`
	DeferredBytes int64 `json:"deferred_bytes,omitempty"`
	Unshared      int   `json:"unshared,omitempty"`
	// Index is "ok", "missing", "invalid" or "none" (no index path).
	Index string `json:"index"`
	// Started is when the pass started, by the clock of the machine holding
	// the files: the right --since for the pass after next.
	Started  int64         `json:"started_unix_nano"`
	Duration time.Duration `json:"duration_ns"`
}

// SpaceResult is the result of a space request: what the staged mode
// needs to know before it copies a volume into its staging volume.
type SpaceResult struct {
	SrcBytes   int64 `json:"src_bytes"`   // allocated by the source
	StageBytes int64 `json:"stage_bytes"` // allocated by the staging copy so far
	FreeBytes  int64 `json:"free_bytes"`  // free where the staging copy lives
	// Reflink: source and staging copy share a file system whose copies
	// are reflinks (xfs, btrfs), so the copy takes blocks only where the
	// source diverges while it exists.
	Reflink bool `json:"reflink,omitempty"`
}

// Need is how many more bytes the staging copy may take: the difference
// (nothing where copies are reflinks), plus 5% of the source for metadata,
// temporary files and, with reflinks, the blocks the application rewrites
// while a clone exists.
func (s SpaceResult) Need() int64 {
	if s.Reflink {
		return s.SrcBytes / 20
	}
	return max(s.SrcBytes-s.StageBytes, 0) + s.SrcBytes/20
}

// PackResult is the result of a pack. The archive's SHA-256 is not part
// of it: the plugin reads the file back for it (archive.Pending.HashDirect).
type PackResult struct {
	TarBytes     int64 `json:"tar_bytes"`
	ArchiveBytes int64 `json:"archive_bytes"`
	Entries      int   `json:"entries"`
	Dropped      int   `json:"dropped,omitempty"` // large files removed once archived (DropLarge)
}

// UnpackResult is the result of an unpack.
type UnpackResult struct {
	Entries  int           `json:"entries"`
	Files    int           `json:"files"`
	Bytes    int64         `json:"bytes"`   // file contents in the archive
	Written  int64         `json:"written"` // of those, bytes that had to be written
	Removed  int           `json:"removed"` // entries of the volume the archive does not hold
	Duration time.Duration `json:"duration_ns"`
}
