package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// The staged snapshot keeps a mirror of each volume in a staging
// volume. Sync brings the mirror up to date: once while the services run
// (the pre-copy) and once more after they stopped (the delta-sync). Only the
// second pass counts as downtime, so it must not read unchanged files, yet its
// result must equal a full copy taken when it finishes.
//
// Deciding "unchanged" without reading: the index remembers, per regular
// file, the source's inode, size, mtime, type and ctime as seen when the file
// was last copied. Size, mtime and inode are under the application's control
// (a same-size rewrite followed by utimes keeps them), ctime is not: every
// change to an inode moves its ctime to "now". So a file is trusted only when
// its ctime is older than the start of the sync that produced the index (and
// older than --since if the caller passes an earlier moment). Anything written
// after that start, even while we were copying it, has a newer ctime.

// The ctime window is widened by a slack: the kernel stamps ctime from a
// coarse clock that lags the fine clock behind time.Now by up to a scheduler
// tick (at most 10 ms), some filesystems keep only whole seconds or two, and
// network filesystems stamp from the server's clock. Files changed within the
// slack before the window get copied once more, while the services are
// stopped; missing one is not an option. Filesystems known to stamp ctime in
// nanoseconds from the local clock get fineSlack, ten ticks; all others
// coarseSlack.
const (
	fineSlack   = 100 * time.Millisecond
	coarseSlack = 2 * time.Second
)

// ctimeSlack returns the slack for the filesystem holding path.
func ctimeSlack(path string) time.Duration {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return coarseSlack
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.OVERLAYFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC, unix.BCACHEFS_SUPER_MAGIC, zfsSuperMagic:
		return fineSlack
	}
	return coarseSlack
}

const zfsSuperMagic = 0x2fc12fc1

// defaultWorkers is how many file contents are copied at once. Small files
// gain from overlapping syscalls, large ones from overlapping I/O; more than
// a few only fight over the disk.
const defaultWorkers = 4

// tmpPrefix names the temporary files Sync creates in the mirror before
// renaming them into place. Leftovers of a killed run are not in the source,
// so the next run deletes them like any other stray entry.
const tmpPrefix = ".autobackup-sync-"

// SyncOptions tunes Sync.
type SyncOptions struct {
	// Since is the start of the previous pass the caller knows about: files
	// whose source ctime is not older than Since are copied again even if
	// the index says they are unchanged. The zero value relies on the start
	// time stored in the index alone, which is always safe; an explicit Since
	// can only make the pass more careful (the earlier of both is used).
	Since time.Time
	// IndexPath is where the index is read and written. It must lie outside
	// both trees. Empty means no index: every regular file is copied.
	IndexPath string
	// Workers copying file contents in parallel; 0 means a small default.
	Workers int
	// KeepIndex leaves the index as it is and does not flush the mirror:
	// for a pass whose result is read straight away (the delta-sync while
	// the services are stopped) and need not survive a crash. The index of
	// the previous pass stays valid: everything this pass copies changed
	// after that pass started, so the next pass copies it again by the
	// ctime rule.
	KeepIndex bool
	// DeferLarge applies where whole-file copies are reflinks (source and
	// mirror on one xfs or btrfs): regular files of at least minDelta are
	// not mirrored by this pass, an earlier clone of one is removed from
	// the mirror, and the index does not list them, so the next pass
	// clones them. A clone shares the source's extents, and while it
	// exists each write of the application to such an extent is
	// copy-on-write: on xfs that slowed PostgreSQL's shutdown checkpoint
	// from 0.2–0.3 s to 0.5–1.25 s and left its files fragmented. The
	// pre-copy therefore leaves the large files, a database's tables and
	// WAL, to the pass while the services are stopped, where a clone is
	// metadata; the clones are dropped once they are archived (by the pack,
	// file by file, or by the next DeferLarge pass). Elsewhere it changes
	// nothing.
	DeferLarge bool
	// Progress, when set, is called every ProgressEvery (default a
	// quarter of a second) while the pass runs, with the regular files
	// done so far; never after Sync returned.
	Progress      func(protocol.Progress)
	ProgressEvery time.Duration

	// Test hooks.
	afterCopy func(rel string) // called after a file's content was copied
	notRoot   bool             // behave as an unprivileged user
}

// SyncMain runs `__helper sync` with the arguments after "sync".
func SyncMain(args []string, stdout io.Writer) error {
	var r protocol.Sync
	if err := protocol.DecodeArgs(&r, args); err != nil {
		return err
	}
	return runSync(&r, stdout)
}

// runSync runs one sync request. It prints the stats as one result line
// on stdout once the pass ran, also when some entries failed; nothing
// when it could not start. With r.Progress it writes progress lines
// before, while the pass runs.
func runSync(r *protocol.Sync, stdout io.Writer) error {
	opts := SyncOptions{IndexPath: r.Index, KeepIndex: r.KeepIndex, DeferLarge: r.DeferLarge, Since: r.Since}
	var mu sync.Mutex // progress lines and the result line must not interleave
	if r.Progress > 0 {
		opts.ProgressEvery = r.Progress
		opts.Progress = func(p protocol.Progress) {
			mu.Lock()
			defer mu.Unlock()
			_ = protocol.WriteProgress(stdout, p)
		}
	}
	stats, err := Sync(r.Src, r.Dst, opts)
	mu.Lock()
	defer mu.Unlock()
	if stats.Duration != 0 { // the pass ran, maybe with errors about some entries
		if jerr := protocol.WriteResult(stdout, stats); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// Sync makes dst an exact mirror of src: regular files, directories,
// symlinks, hard links, FIFOs and (as root) device nodes, with mode, numeric
// owner (as root) and nanosecond mtimes; sockets are skipped. Entries of dst
// absent from src are deleted. Symlinks are never followed, in either tree.
// Unchanged regular files are recognised from the index without being read;
// see the comment at the top of this file for the rule.
//
// Errors about single entries do not stop the pass: the rest is synced, the
// index records what is known to be in sync, and the joined errors are
// returned. The mirror is flushed to disk (syncfs) before the index is
// written; an index only ever describes data that is on disk.
func Sync(src, dst string, opts SyncOptions) (protocol.SyncStats, error) {
	start := time.Now()
	s := &syncer{
		src:   src,
		dst:   dst,
		opts:  opts,
		root:  os.Getuid() == 0 && !opts.notRoot,
		next:  make(map[string]indexEntry),
		links: make(map[devIno]string),
	}
	s.stats.Started = start.UnixNano()
	s.stats.Index = "none"
	if err := checkSyncPaths(src, dst, opts.IndexPath); err != nil {
		return s.stats, err
	}
	var srcSt, dstSt unix.Stat_t
	if err := unix.Lstat(src, &srcSt); err != nil {
		return s.stats, fmt.Errorf("source %s: %w", src, err)
	}
	if !isType(&srcSt, unix.S_IFDIR) {
		return s.stats, fmt.Errorf("source %s: not a directory", src)
	}
	err := unix.Lstat(dst, &dstSt)
	if errors.Is(err, unix.ENOENT) {
		if err = os.MkdirAll(dst, 0o700); err == nil {
			s.wrote.Store(true)
			err = unix.Lstat(dst, &dstSt)
		}
	}
	if err != nil {
		return s.stats, fmt.Errorf("destination %s: %w", dst, err)
	}
	if !isType(&dstSt, unix.S_IFDIR) {
		return s.stats, fmt.Errorf("destination %s: not a directory", dst)
	}

	if opts.IndexPath != "" {
		idx, status := readIndex(opts.IndexPath)
		s.stats.Index = status
		s.old = idx.entries
		s.since = idx.started
		if !opts.Since.IsZero() && opts.Since.UnixNano() < s.since {
			s.since = opts.Since.UnixNano()
		}
		s.since -= int64(ctimeSlack(src))
		// From here on the mirror may change; an index left behind by a
		// run that dies half-way would vouch for files never flushed.
		if status != "missing" && !opts.KeepIndex {
			if err := removeDurably(opts.IndexPath); err != nil {
				return s.stats, fmt.Errorf("index: %w", err)
			}
		}
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWorkers
	}
	s.jobs = make(chan string, 256)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for rel := range s.jobs {
				s.copyFile(rel)
			}
		})
	}
	s.clone = preferClone(src, dst)
	s.stats.Clone = s.clone
	s.deferLarge = opts.DeferLarge && s.clone
	stopProgress := s.reportProgress()
	defer stopProgress()
	rootUnlocked := s.ensureWritable(dst, &dstSt)
	s.walkDir("", false)
	close(s.jobs)
	wg.Wait()
	s.makeLinks()
	s.dirs = append(s.dirs, dirJob{rel: "", st: srcSt, unlocked: rootUnlocked})
	s.applyDirMeta()

	if opts.KeepIndex {
		s.stats.Duration = time.Since(start)
		return s.stats, s.err()
	}
	if s.wrote.Load() {
		if err := syncFS(dst); err != nil {
			s.fail("", fmt.Errorf("flush %s: %w", dst, err))
			s.stats.Duration = time.Since(start)
			return s.stats, s.err()
		}
	}
	if opts.IndexPath != "" {
		if err := writeIndex(opts.IndexPath, index{started: s.stats.Started, entries: s.next}); err != nil {
			s.fail("", fmt.Errorf("index: %w", err))
		}
	}
	s.stats.Duration = time.Since(start)
	return s.stats, s.err()
}

type devIno struct{ dev, ino uint64 }

type linkJob struct {
	rel, primary string
	st           unix.Stat_t
}

type dirJob struct {
	rel      string
	st       unix.Stat_t
	unlocked bool // ensureWritable changed its mode, the mode was right before
	fresh    bool // created by this pass
}

type syncer struct {
	src, dst string
	opts     SyncOptions
	root     bool
	since    int64                 // ctime (ns) from which index entries are not trusted
	old      map[string]indexEntry // read-only after start
	links    map[devIno]string     // walker only: source inode -> first path seen
	pending  []linkJob             // walker only
	dirs     []dirJob              // walker only, post-order
	jobs     chan string
	clone    bool // whole-file copies are reflinks here: re-link, never compare
	// deferLarge: leave large files to the next pass (SyncOptions.DeferLarge)
	deferLarge bool
	wrote      atomic.Bool
	tmpSeq     atomic.Uint64
	// regular files done (copied, patched or found unchanged) and their
	// bytes, for progress
	doneFiles, doneBytes atomic.Int64
	// the temporary files being filled, whose sizes count as progress too
	// (a large file would show none until it is done)
	inflightMu sync.Mutex
	inflight   map[int]bool
	shown      int64 // bytes last reported: a file between both counts must not make it go back

	mu    sync.Mutex // guards the fields below once workers run
	next  map[string]indexEntry
	stats protocol.SyncStats
	errs  []error
	nerr  int
}

func (s *syncer) srcPath(rel string) string { return joinRel(s.src, rel) }
func (s *syncer) dstPath(rel string) string { return joinRel(s.dst, rel) }

func joinRel(root, rel string) string {
	if rel == "" {
		return root
	}
	return root + "/" + rel
}

const maxErrs = 20

func (s *syncer) fail(rel string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nerr++
	if len(s.errs) < maxErrs {
		if rel != "" {
			err = fmt.Errorf("%q: %w", rel, err)
		}
		s.errs = append(s.errs, err)
	}
}

func (s *syncer) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.errs
	if s.nerr > len(errs) {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("and %d more errors", s.nerr-len(errs)))
	}
	return errors.Join(errs...)
}

func (s *syncer) count(f func(*protocol.SyncStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// done counts a regular file of size bytes as done, for progress.
func (s *syncer) done(size int64) {
	s.doneFiles.Add(1)
	s.doneBytes.Add(size)
}

// track adds (or removes) the temporary file open as fd to what progress
// counts while it is filled.
func (s *syncer) track(fd int, on bool) {
	if s.opts.Progress == nil {
		return
	}
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if s.inflight == nil {
		s.inflight = map[int]bool{}
	}
	if on {
		s.inflight[fd] = true
	} else {
		delete(s.inflight, fd)
	}
}

// progress is how far the pass got: files done, and their bytes plus
// what is written of the files being copied.
func (s *syncer) progress() protocol.Progress {
	p := protocol.Progress{Files: s.doneFiles.Load(), Bytes: s.doneBytes.Load()}
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	for fd := range s.inflight {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			p.Bytes += st.Size
		}
	}
	p.Bytes = max(p.Bytes, s.shown)
	s.shown = p.Bytes
	return p
}

// reportProgress calls opts.Progress every opts.ProgressEvery until the
// returned function is called.
func (s *syncer) reportProgress() (stop func()) {
	if s.opts.Progress == nil {
		return func() {}
	}
	every := s.opts.ProgressEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				s.opts.Progress(s.progress())
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func (s *syncer) record(rel string, st *unix.Stat_t) {
	s.mu.Lock()
	s.next[rel] = entryOf(st)
	s.mu.Unlock()
}

// walkDir syncs the contents of directory rel, whose mirror exists as a real
// directory (fresh: just created, so empty). Directories are handled by the
// walker itself, file contents are handed to the workers.
func (s *syncer) walkDir(rel string, fresh bool) {
	// The lstat calls are the whole cost of an unchanged tree: list the
	// mirror's side on another core meanwhile.
	var dstEnts []dirEntry
	var dstErr error
	var dstDone chan struct{}
	if !fresh {
		dstDone = make(chan struct{})
		go func() {
			defer close(dstDone)
			dstEnts, dstErr = lstatDir(s.dstPath(rel))
		}()
	}
	srcEnts, err := lstatDir(s.srcPath(rel))
	if dstDone != nil {
		<-dstDone
	}
	if err != nil {
		if vanished(err) {
			s.count(func(st *protocol.SyncStats) { st.Vanished++ })
		} else {
			s.fail(rel, err)
		}
		return
	}
	children := srcEnts[:0]
	inSrc := make(map[string]bool, len(srcEnts))
	for _, c := range srcEnts {
		switch {
		case c.err == nil:
			inSrc[c.name] = true
			children = append(children, c)
		case errors.Is(c.err, unix.ENOENT):
			s.count(func(st *protocol.SyncStats) { st.Vanished++ })
		default:
			inSrc[c.name] = true // unknown state: leave the mirror's copy alone
			s.fail(joinName(rel, c.name), c.err)
		}
	}
	sort.Slice(children, func(i, j int) bool { return children[i].name < children[j].name })

	inDst := map[string]*unix.Stat_t{}
	if !fresh {
		if dstErr != nil {
			s.fail(rel, fmt.Errorf("mirror: %w", dstErr))
			return
		}
		for i, c := range dstEnts {
			switch {
			case !inSrc[c.name]:
				if s.remove(joinName(rel, c.name)) {
					s.count(func(st *protocol.SyncStats) { st.Deleted++ })
				}
			case c.err == nil:
				inDst[c.name] = &dstEnts[i].st
			case !errors.Is(c.err, unix.ENOENT):
				s.fail(joinName(rel, c.name), fmt.Errorf("mirror: %w", c.err))
				inSrc[c.name] = false // skip it below
			}
		}
	}

	var none unix.Stat_t
	for i := range children {
		c := &children[i]
		if !inSrc[c.name] {
			continue
		}
		crel := joinName(rel, c.name)
		dst, have := inDst[c.name]
		if !have {
			dst = &none
		}
		switch c.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			s.count(func(st *protocol.SyncStats) { st.Dirs++ })
			s.dir(crel, &c.st, dst, have)
		case unix.S_IFREG:
			s.count(func(st *protocol.SyncStats) { st.Files++ })
			s.file(crel, &c.st, dst, have)
		case unix.S_IFLNK:
			s.count(func(st *protocol.SyncStats) { st.Symlinks++ })
			s.symlink(crel, &c.st, dst, have)
		case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
			s.count(func(st *protocol.SyncStats) { st.Special++ })
			s.special(crel, &c.st, dst, have)
		default: // sockets: tar skips them too, and they mean nothing without their server
			s.count(func(st *protocol.SyncStats) { st.Skipped++ })
			if have {
				s.remove(crel)
			}
		}
	}
}

type dirEntry struct {
	name string
	st   unix.Stat_t
	err  error
}

// lstatDir lists directory path (not following a symlink there) and lstats
// its entries relative to the open directory, which spares the kernel the
// walk down the whole path for each of them. No descriptor stays open, so
// the depth of the tree does not matter.
func lstatDir(path string) ([]dirEntry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	ents := make([]dirEntry, len(names))
	for i, name := range names {
		ents[i].name = name
		for {
			err = unix.Fstatat(fd, name, &ents[i].st, unix.AT_SYMLINK_NOFOLLOW)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			ents[i].err = &os.PathError{Op: "lstat", Path: path + "/" + name, Err: err}
		}
	}
	return ents, nil
}

func joinName(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

func (s *syncer) dir(rel string, st, dst *unix.Stat_t, have bool) {
	if have && !isType(dst, unix.S_IFDIR) {
		s.remove(rel) // also a symlink: never descend through it
		have = false
	}
	fresh, unlocked := false, false
	if !have {
		if err := unix.Mkdir(s.dstPath(rel), 0o700); err != nil {
			s.fail(rel, err)
			return
		}
		s.wrote.Store(true)
		s.count(func(st *protocol.SyncStats) { st.Created++ })
		fresh = true
	} else {
		unlocked = s.ensureWritable(s.dstPath(rel), dst)
	}
	s.walkDir(rel, fresh)
	s.dirs = append(s.dirs, dirJob{rel: rel, st: *st, unlocked: unlocked, fresh: fresh})
}

// ensureWritable lets an unprivileged run change a mirror directory whose
// final mode forbids it; the directory pass puts the mode back. It reports
// whether it changed the mode.
func (s *syncer) ensureWritable(path string, st *unix.Stat_t) bool {
	if s.root || st.Mode&0o700 == 0o700 {
		return false
	}
	if err := unix.Chmod(path, st.Mode&0o7777|0o700); err != nil {
		return false
	}
	s.wrote.Store(true)
	return true
}

func (s *syncer) file(rel string, st, dst *unix.Stat_t, have bool) {
	if have && !isType(dst, unix.S_IFREG) {
		s.remove(rel)
		have = false
	}
	if st.Nlink > 1 {
		key := devIno{st.Dev, st.Ino}
		if first, ok := s.links[key]; ok {
			s.pending = append(s.pending, linkJob{rel: rel, primary: first, st: *st})
			return
		}
		s.links[key] = rel
	}
	if s.deferLarge && st.Size >= minDelta && st.Nlink == 1 {
		s.deferFile(rel, st, have)
		return
	}
	e, ok := s.old[rel]
	var dstp *unix.Stat_t
	if have {
		dstp = dst
	}
	if needsCopy(e, ok, st, dstp, s.since) {
		s.jobs <- rel
		return
	}
	s.fixMeta(rel, st, dst, false, false)
	s.record(rel, st)
	s.done(st.Size)
}

// deferFile leaves the large file rel out of this pass (see
// SyncOptions.DeferLarge): its clone in the mirror, if any, is removed, and
// it is not recorded, so the next pass clones it.
func (s *syncer) deferFile(rel string, st *unix.Stat_t, have bool) {
	unshared := have && s.remove(rel)
	s.count(func(ss *protocol.SyncStats) {
		ss.Deferred++
		ss.DeferredBytes += st.Size
		if unshared {
			ss.Unshared++
		}
	})
	s.done(st.Size)
}

// needsCopy is the incremental rule: the content of a regular file is copied
// unless the mirror holds it (dst non-nil, same size and mtime, not linked
// elsewhere) and the index entry e, taken when it was last copied, still
// matches the source in inode, size, mtime, type and ctime, with that ctime
// older than since.
func needsCopy(e indexEntry, ok bool, st, dst *unix.Stat_t, since int64) bool {
	if !ok || dst == nil {
		return true
	}
	ctime := st.Ctim.Nano()
	switch {
	case e.Ino != st.Ino, e.Size != st.Size, e.Mtime != st.Mtim.Nano(),
		e.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT, e.Ctime != ctime, ctime >= since:
		return true
	case dst.Size != st.Size, dst.Mtim.Nano() != st.Mtim.Nano():
		return true
	case st.Nlink == 1 && dst.Nlink != 1: // the mirror's inode is shared with another path
		return true
	}
	return false
}

// copyFile copies one file's content and metadata to a temporary name next
// to its destination and renames it into place, so the mirror never holds a
// partial file under a real name and hard links to the old inode are cut.
func (s *syncer) copyFile(rel string) {
	in, err := openSource(s.srcPath(rel))
	if err != nil {
		if vanished(err) {
			s.count(func(st *protocol.SyncStats) { st.Vanished++ })
		} else {
			s.fail(rel, err)
		}
		return
	}
	defer unix.Close(in)
	// What is recorded and applied is the state just before reading: a
	// write during the copy moves mtime and ctime past it.
	var st unix.Stat_t
	if err := unix.Fstat(in, &st); err != nil {
		s.fail(rel, err)
		return
	}
	if !isType(&st, unix.S_IFREG) {
		s.count(func(st *protocol.SyncStats) { st.Vanished++ })
		return
	}
	dstPath := s.dstPath(rel)
	if st.Size >= minDelta && st.Nlink == 1 {
		switch done, err := s.patch(rel, dstPath, in, &st); {
		case done:
			return
		case err != nil:
			s.fail(rel, err)
			return
		}
	}
	out, tmp, err := s.createTemp(filepath.Dir(dstPath))
	if err != nil {
		s.fail(rel, err)
		return
	}
	s.wrote.Store(true)
	s.track(out, true)
	var n int64
	if st.Blocks*512 < st.Size {
		n, err = copySparse(out, in, st.Size)
	} else {
		n, err = copyData(out, in, st.Size)
	}
	if err == nil {
		err = s.setFileMeta(out, tmp, &st)
	}
	s.track(out, false)
	if cerr := unix.Close(out); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Rename(tmp, dstPath)
	}
	if err != nil {
		unix.Unlink(tmp)
		s.fail(rel, err)
		return
	}
	s.mu.Lock()
	s.stats.Copied++
	s.stats.CopiedBytes += n
	s.next[rel] = entryOf(&st)
	s.mu.Unlock()
	s.done(st.Size)
	if s.opts.afterCopy != nil {
		s.opts.afterCopy(rel)
	}
}

// patch brings the mirror's existing version of rel up to date in place
// (see delta.go). It reports false, without an error, when there is no
// version to patch: the caller copies the file whole.
func (s *syncer) patch(rel, dstPath string, in int, st *unix.Stat_t) (bool, error) {
	out, err := unix.Open(dstPath, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, nil // missing, a symlink, or not writable: copy it whole
	}
	res, err := updateInPlace(out, in, st.Size, s.clone)
	if errors.Is(err, errNotPatchable) {
		unix.Close(out)
		return false, nil
	}
	s.wrote.Store(true)
	if err == nil {
		err = s.setFileMeta(out, dstPath, st)
	}
	if cerr := unix.Close(out); err == nil {
		err = cerr
	}
	if err != nil {
		// The mirror's file is now neither old nor new; its mtime moved,
		// so the next pass copies it again in any case.
		return false, err
	}
	s.mu.Lock()
	s.stats.Patched++
	s.stats.PatchedBytes += res.written
	s.stats.ComparedBytes += res.compared
	s.next[rel] = entryOf(st)
	s.mu.Unlock()
	s.done(st.Size)
	if s.opts.afterCopy != nil {
		s.opts.afterCopy(rel)
	}
	return true, nil
}

var pid = os.Getpid()

func (s *syncer) tempName(dir string) string {
	return dir + "/" + tmpPrefix + strconv.Itoa(pid) + "-" + strconv.FormatUint(s.tmpSeq.Add(1), 10)
}

func (s *syncer) createTemp(dir string) (int, string, error) {
	for {
		name := s.tempName(dir)
		fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return -1, "", &os.PathError{Op: "create", Path: name, Err: err}
		}
		return fd, name, nil
	}
}

func (s *syncer) setFileMeta(fd int, path string, st *unix.Stat_t) error {
	if s.root {
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	// After chown: chown clears setuid/setgid.
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return err
	}
	return setTimes(path, st)
}

// fixMeta applies owner, mode and times of st to the mirror entry at rel
// whose current state is dst, where they differ. Atimes alone do not count:
// reading the tree moves them. Quiet: not an update (a directory made by
// this pass).
func (s *syncer) fixMeta(rel string, st, dst *unix.Stat_t, times, quiet bool) {
	path := s.dstPath(rel)
	link := isType(st, unix.S_IFLNK)
	changed := false
	chowned := false
	if s.root && (dst.Uid != st.Uid || dst.Gid != st.Gid) {
		if err := unix.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
			s.fail(rel, err)
			return
		}
		changed, chowned = true, true
	}
	if !link && (chowned || dst.Mode&0o7777 != st.Mode&0o7777) {
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			s.fail(rel, err)
			return
		}
		changed = true
	}
	if times && dst.Mtim.Nano() != st.Mtim.Nano() {
		if err := setTimes(path, st); err != nil {
			s.fail(rel, err)
			return
		}
		changed = true
	}
	if changed {
		s.wrote.Store(true)
		if !quiet {
			s.count(func(st *protocol.SyncStats) { st.MetaUpdated++ })
		}
	}
}

func (s *syncer) symlink(rel string, st, dst *unix.Stat_t, have bool) {
	target, err := readlink(s.srcPath(rel))
	if err != nil {
		if vanished(err) {
			s.count(func(st *protocol.SyncStats) { st.Vanished++ })
		} else {
			s.fail(rel, err)
		}
		return
	}
	if have && isType(dst, unix.S_IFLNK) {
		if cur, err := readlink(s.dstPath(rel)); err == nil && cur == target {
			s.fixMeta(rel, st, dst, true, false)
			return
		}
	}
	if have {
		s.remove(rel)
	}
	s.wrote.Store(true)
	path := s.dstPath(rel)
	if err := unix.Symlink(target, path); err != nil {
		s.fail(rel, err)
		return
	}
	s.count(func(st *protocol.SyncStats) { st.Created++ })
	s.createdMeta(rel, path, st)
}

// createdMeta sets owner, mode (not for symlinks) and times on an entry the
// walker just created.
func (s *syncer) createdMeta(rel, path string, st *unix.Stat_t) {
	if s.root {
		if err := unix.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
			s.fail(rel, err)
			return
		}
	}
	if !isType(st, unix.S_IFLNK) {
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			s.fail(rel, err)
			return
		}
	}
	if err := setTimes(path, st); err != nil {
		s.fail(rel, err)
	}
}

func (s *syncer) special(rel string, st, dst *unix.Stat_t, have bool) {
	typ := st.Mode & unix.S_IFMT
	if have && dst.Mode&unix.S_IFMT == typ && (typ == unix.S_IFIFO || dst.Rdev == st.Rdev) {
		s.fixMeta(rel, st, dst, true, false)
		return
	}
	if have {
		s.remove(rel)
	}
	if typ != unix.S_IFIFO && !s.root {
		s.fail(rel, errors.New("device node: copying it needs root"))
		return
	}
	s.wrote.Store(true)
	path := s.dstPath(rel)
	if err := unix.Mknod(path, typ|st.Mode&0o7777, int(st.Rdev)); err != nil {
		s.fail(rel, err)
		return
	}
	s.count(func(st *protocol.SyncStats) { st.Created++ })
	s.createdMeta(rel, path, st)
}

// remove deletes the mirror entry at rel, a whole tree if it is a directory.
// os.RemoveAll does not follow symlinks.
func (s *syncer) remove(rel string) bool {
	s.wrote.Store(true)
	path := s.dstPath(rel)
	err := os.RemoveAll(path)
	if err != nil && !s.root && errors.Is(err, os.ErrPermission) {
		// Read-only directories (mirrored as such) block an unprivileged
		// removal: open them up and try again.
		filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				unix.Chmod(p, 0o700)
			}
			return nil
		})
		err = os.RemoveAll(path)
	}
	if err != nil {
		s.fail(rel, fmt.Errorf("mirror: %w", err))
		return false
	}
	return true
}

// makeLinks gives every further path of a source inode the mirror inode of
// its first path, once all contents are in place.
func (s *syncer) makeLinks() {
	for _, l := range s.pending {
		e, ok := s.next[l.primary]
		if !ok || e.Ino != l.st.Ino {
			// The first path failed, vanished or was replaced while
			// copying: this one is no longer its link.
			s.copyFile(l.rel)
			continue
		}
		primary, path := s.dstPath(l.primary), s.dstPath(l.rel)
		var pst, dst unix.Stat_t
		if err := unix.Lstat(primary, &pst); err != nil {
			s.fail(l.rel, err)
			continue
		}
		if err := unix.Lstat(path, &dst); err == nil && dst.Dev == pst.Dev && dst.Ino == pst.Ino {
			s.record(l.rel, &l.st)
			continue
		}
		s.wrote.Store(true)
		tmp := s.tempName(filepath.Dir(path))
		err := os.Link(primary, tmp)
		if err == nil {
			if err = os.Rename(tmp, path); err != nil {
				os.Remove(tmp)
			}
		}
		if err != nil {
			s.fail(l.rel, err)
			continue
		}
		s.count(func(st *protocol.SyncStats) { st.Linked++ })
		s.record(l.rel, &l.st)
	}
}

// applyDirMeta sets owner, mode and mtime of every directory after its
// contents, deepest first, ending with the root.
func (s *syncer) applyDirMeta() {
	for _, d := range s.dirs {
		var dst unix.Stat_t
		if err := unix.Lstat(s.dstPath(d.rel), &dst); err != nil {
			s.fail(d.rel, err)
			continue
		}
		if d.unlocked && dst.Mode&0o7777 != d.st.Mode&0o7777 {
			// Putting back what ensureWritable took away is no change.
			if err := unix.Chmod(s.dstPath(d.rel), d.st.Mode&0o7777); err != nil {
				s.fail(d.rel, err)
				continue
			}
			dst.Mode = dst.Mode&unix.S_IFMT | d.st.Mode&0o7777
		}
		s.fixMeta(d.rel, &d.st, &dst, true, d.fresh)
	}
}

// checkSyncPaths refuses trees that contain each other and an index inside
// either tree (the mirror would delete it, the source would change with it).
func checkSyncPaths(src, dst, index string) error {
	a, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	b, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	if within(a, b) || within(b, a) {
		return fmt.Errorf("source %s and destination %s overlap", src, dst)
	}
	if index == "" {
		return nil
	}
	c, err := filepath.Abs(index)
	if err != nil {
		return err
	}
	if within(c, a) || within(c, b) {
		return fmt.Errorf("index %s: must be outside %s and %s", index, src, dst)
	}
	return nil
}
