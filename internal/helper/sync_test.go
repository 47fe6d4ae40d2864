package helper

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"golang.org/x/sys/unix"
)

// node is what a mirror must reproduce of one entry.
type node struct {
	Type     uint32
	Perm     uint32
	UID, GID uint32
	Size     int64
	Hash     [32]byte
	Target   string
	Mtime    int64
	Rdev     uint64
	LinkedTo string // first path (in walk order) sharing this inode, if any other does
}

// snapshot walks root without following symlinks. Paths are relative, the
// root itself is ".".
func snapshot(t *testing.T, root string) map[string]node {
	t.Helper()
	nodes := map[string]node{}
	inodes := map[uint64][]string{}
	var walk func(rel string)
	walk = func(rel string) {
		path := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			t.Fatal(err)
		}
		n := node{Type: st.Mode & unix.S_IFMT, Perm: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano()}
		switch n.Type {
		case unix.S_IFREG:
			n.Size = st.Size
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n.Hash = sha256.Sum256(b)
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		case unix.S_IFLNK:
			n.Perm = 0
			target, err := os.Readlink(path)
			if err != nil {
				t.Fatal(err)
			}
			n.Target = target
		case unix.S_IFCHR, unix.S_IFBLK:
			n.Rdev = st.Rdev
		}
		nodes[rel] = n
		if n.Type != unix.S_IFDIR {
			return
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries { // sorted by name
			walk(filepath.Join(rel, e.Name()))
		}
	}
	walk(".")
	for _, paths := range inodes {
		if len(paths) < 2 {
			continue
		}
		for _, p := range paths {
			n := nodes[p]
			n.LinkedTo = paths[0]
			nodes[p] = n
		}
	}
	return nodes
}

// compareTrees fails the test where got differs from want in type, mode,
// owner, size, content, symlink target, mtime, device number or hard-link
// groups.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	diffs := diffTrees(snapshot(t, want), snapshot(t, got))
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... %d more", len(diffs)-10))
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if len(diffs) > 0 {
		t.FailNow()
	}
}

func diffTrees(w, g map[string]node) []string {
	var diffs []string
	for p, wn := range w {
		gn, ok := g[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %q", p))
		case gn != wn:
			diffs = append(diffs, fmt.Sprintf("%q: got %+v, want %+v", p, gn, wn))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %q", p))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// TestCompareTreesSeesDifferences keeps the checker honest: each change is
// one the mirror could get wrong.
func TestCompareTreesSeesDifferences(t *testing.T) {
	a := tempTree(t)
	makeRichTree(t, a)
	base := snapshot(t, a)
	changes := map[string]func(p func(string) string){
		"same-size content": func(p func(string) string) { sameSizeSameMtime(t, p("file.txt"), []byte("HELLO\n")) },
		"mtime ns": func(p func(string) string) {
			must(t, os.Chtimes(p("big.bin"), oldTime, oldTime.Add(time.Nanosecond)))
		},
		"dir mtime": func(p func(string) string) { must(t, os.Chtimes(p("deep"), oldTime, oldTime)) },
		"mode":      func(p func(string) string) { must(t, os.Chmod(p("bin/suid"), 0o755)) },
		"owner":     func(p func(string) string) { must(t, os.Lchown(p("empty"), 1, 1)) },
		"symlink target": func(p func(string) string) {
			must(t, os.Remove(p("dangling")))
			must(t, os.Symlink("nope/nonE", p("dangling")))
		},
		"link group": func(p func(string) string) {
			b, _ := os.ReadFile(p("hard3"))
			st, _ := os.Stat(p("hard3"))
			must(t, os.Remove(p("hard3")))
			writeFile(t, p("hard3"), b, 0o644)
			must(t, os.Chtimes(p("hard3"), oldTime, st.ModTime()))
		},
		"extra entry": func(p func(string) string) { writeFile(t, p("ro2/x"), nil, 0o644) },
	}
	for name, change := range changes {
		if name == "owner" && os.Getuid() != 0 {
			continue
		}
		b := tempTree(t)
		if _, err := Sync(a, b, SyncOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := diffTrees(base, snapshot(t, b)); len(d) != 0 {
			t.Fatalf("copy differs before the change: %v", d)
		}
		change(func(rel string) string { return filepath.Join(b, rel) })
		if d := diffTrees(base, snapshot(t, b)); len(d) == 0 {
			t.Errorf("%s: no difference found", name)
		}
	}
}

// canChown reports whether ownership can be tested: as root, yes; otherwise
// the checks are skipped on a laptop but fail in CI.
func canChown(t *testing.T) bool {
	t.Helper()
	if os.Getuid() == 0 {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ownership checks need root in CI")
	}
	t.Log("not root: skipping ownership checks")
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, data, perm))
	must(t, os.Chmod(path, perm)) // umask
}

var oldTime = time.Unix(1_500_000_000, 123_456_789)

// makeRichTree fills dir with one of everything Sync handles.
func makeRichTree(t *testing.T, dir string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	writeFile(t, p("file.txt"), []byte("hello\n"), 0o644)
	writeFile(t, p("empty"), nil, 0o600)
	writeFile(t, p("with space and\nnewline ü €.txt"), []byte("odd name"), 0o640)
	writeFile(t, p("bin/suid"), []byte("#!/bin/sh\n"), 0o755)
	must(t, os.Chmod(p("bin/suid"), 0o755|os.ModeSetuid))
	writeFile(t, p("bin/sgid"), []byte("#!/bin/sh\n"), 0o755)
	must(t, os.Chmod(p("bin/sgid"), 0o755|os.ModeSetgid))
	must(t, os.Mkdir(p("sticky"), 0o755))
	must(t, os.Chmod(p("sticky"), 0o777|os.ModeSticky))
	writeFile(t, p("ro/inside"), []byte("read only dir"), 0o444)
	must(t, os.Chmod(p("ro"), 0o555))
	writeFile(t, p("deep/a/b/c/d.txt"), []byte("deep"), 0o644)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	big[12345] = 'x'
	writeFile(t, p("big.bin"), big, 0o644)
	must(t, os.Symlink("file.txt", p("link-rel")))
	must(t, os.Symlink("/etc/passwd", p("link-abs")))
	must(t, os.Symlink("nope/none", p("dangling")))
	must(t, os.Symlink("deep", p("dirlink")))
	writeFile(t, p("hard1"), []byte("shared inode"), 0o644)
	must(t, os.Link(p("hard1"), p("deep/hard2")))
	must(t, os.Link(p("hard1"), p("hard3")))
	must(t, unix.Mkfifo(p("pipe"), 0o620))
	must(t, os.Chmod(p("pipe"), 0o620))
	if os.Getuid() == 0 {
		if err := unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Logf("mknod not permitted here (%v): no device node in the tree", err)
		}
	}
	if canChown(t) {
		must(t, os.Lchown(p("file.txt"), 1234, 5678))
		must(t, os.Lchown(p("deep/a"), 4321, 8765))
		must(t, os.Lchown(p("link-rel"), 1111, 2222))
		must(t, os.Lchown(p("pipe"), 7, 8))
		// chown cleared the setuid bit of bin/suid's peers; set it again after.
		must(t, os.Lchown(p("bin/suid"), 1000, 1000))
		must(t, os.Chmod(p("bin/suid"), 0o755|os.ModeSetuid))
	}
	for _, rel := range []string{"file.txt", "big.bin", "deep/a/b/c/d.txt", "hard1"} {
		must(t, os.Chtimes(p(rel), oldTime, oldTime.Add(time.Duration(len(rel)))))
	}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("link-rel"),
		[]unix.Timespec{unix.NsecToTimespec(oldTime.UnixNano()), unix.NsecToTimespec(oldTime.UnixNano() + 7)},
		unix.AT_SYMLINK_NOFOLLOW))
	for _, rel := range []string{"deep/a/b/c", "deep/a", "ro", "."} {
		must(t, os.Chtimes(p(rel), oldTime, oldTime.Add(time.Duration(len(rel))*time.Millisecond)))
	}
}

type syncEnv struct {
	src, dst, index string
}

func newSyncEnv(t *testing.T) syncEnv {
	return syncEnv{src: tempTree(t), dst: tempTree(t), index: filepath.Join(t.TempDir(), "index")}
}

// tempTree is t.TempDir for trees that may hold read-only directories,
// which an unprivileged cleanup could not empty.
func tempTree(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(path, 0o700)
			}
			return nil
		})
	})
	return dir
}

func (e syncEnv) sync(t *testing.T, opts SyncOptions) protocol.SyncStats {
	t.Helper()
	if opts.IndexPath == "" {
		opts.IndexPath = e.index
	}
	stats, err := Sync(e.src, e.dst, opts)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return stats
}

func TestSyncInitialCopy(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	stats := e.sync(t, SyncOptions{})
	compareTrees(t, e.src, e.dst)
	if stats.Index != "missing" || stats.Linked != 2 || stats.Copied != stats.Files-2 {
		t.Errorf("stats = %+v, want index missing, 2 links and every other file copied", stats)
	}
}

func TestSyncIntoMissingDestination(t *testing.T) {
	e := newSyncEnv(t)
	e.dst = filepath.Join(e.dst, "not", "yet")
	makeRichTree(t, e.src)
	e.sync(t, SyncOptions{})
	compareTrees(t, e.src, e.dst)
}

func TestSyncEveryKindOfChange(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	t0 := time.Now()
	e.sync(t, SyncOptions{})
	chown := canChown(t)

	p := func(rel string) string { return filepath.Join(e.src, rel) }
	writeFile(t, p("file.txt"), []byte("new content, longer\n"), 0o644) // write
	f, err := os.OpenFile(p("deep/a/b/c/d.txt"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(" appended")
	must(t, err)
	must(t, f.Close())
	must(t, os.Truncate(p("big.bin"), 1000))                 // truncate
	must(t, os.Rename(p("empty"), p("renamed-empty")))       // rename file
	must(t, os.Rename(p("deep/a/b"), p("deep/moved-b")))     // rename dir
	must(t, os.Remove(p("bin/sgid")))                        // delete file
	must(t, os.RemoveAll(p("sticky")))                       // delete dir
	must(t, os.Remove(p("with space and\nnewline ü €.txt"))) // file -> dir
	writeFile(t, p("with space and\nnewline ü €.txt/inner"), []byte("now a dir"), 0o600)
	must(t, os.Chmod(p("ro"), 0o755))
	must(t, os.RemoveAll(p("ro"))) // dir -> symlink
	must(t, os.Symlink("deep", p("ro")))
	must(t, os.Chmod(p("bin/suid"), 0o700))                    // chmod
	must(t, os.Link(p("deep/moved-b/c/d.txt"), p("hard-new"))) // new hard link
	must(t, os.Remove(p("link-rel")))                          // symlink retarget
	must(t, os.Symlink("big.bin", p("link-rel")))
	must(t, os.Remove(p("hard3"))) // leave a link group
	writeFile(t, p("hard3"), []byte("on its own"), 0o644)
	must(t, os.Remove(p("pipe"))) // fifo -> file
	writeFile(t, p("pipe"), []byte("no longer a fifo"), 0o644)
	must(t, os.Remove(p("dirlink"))) // symlink -> dir
	writeFile(t, p("dirlink/x"), []byte("x"), 0o644)
	must(t, os.Chtimes(p("hard1"), oldTime, oldTime.Add(time.Hour))) // utimes only
	if chown {
		must(t, os.Lchown(p("renamed-empty"), 42, 43)) // chown
		must(t, os.Lchown(p("deep"), 44, 45))
	}

	stats := e.sync(t, SyncOptions{Since: t0})
	compareTrees(t, e.src, e.dst)
	if stats.Deleted == 0 || stats.Linked == 0 {
		t.Errorf("stats = %+v, want deletions and links", stats)
	}
}

// TestSyncNoChangeReadsNothing checks that a second pass over an unchanged
// tree copies nothing and changes nothing. The files must be older than the
// ctime slack for that.
func TestSyncNoChangeReadsNothing(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	time.Sleep(ctimeSlack(e.src) + 100*time.Millisecond)
	t0 := time.Now()
	first := e.sync(t, SyncOptions{})
	got := e.sync(t, SyncOptions{Since: t0})
	compareTrees(t, e.src, e.dst)
	want := protocol.SyncStats{Files: first.Files, Dirs: first.Dirs, Symlinks: first.Symlinks, Special: first.Special, Index: "ok"}
	got.Started, got.Duration = 0, 0
	if got != want {
		t.Errorf("second pass: got %+v, want %+v", got, want)
	}
}

// TestSyncRewriteDuringPreCopy is the case the ctime rule exists for: while
// the pre-copy runs, a service rewrites a file it has just copied with
// content of the same size and sets the old mtime back.
func TestSyncRewriteDuringPreCopy(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	victim := filepath.Join(e.src, "file.txt")
	before, err := os.ReadFile(victim)
	must(t, err)
	after := bytes.ToUpper(before)
	var once sync.Once
	hook := func(rel string) {
		if rel == "file.txt" {
			once.Do(func() { sameSizeSameMtime(t, victim, after) })
		}
	}
	t0 := time.Now()
	e.sync(t, SyncOptions{afterCopy: hook})
	if got, _ := os.ReadFile(filepath.Join(e.dst, "file.txt")); !bytes.Equal(got, before) {
		t.Fatalf("pre-copy did not race with the rewrite: mirror has %q", got)
	}
	e.sync(t, SyncOptions{Since: t0})
	compareTrees(t, e.src, e.dst)
}

// sameSizeSameMtime overwrites path in place with data of the same length
// and restores its mtime and atime: only ctime tells.
func sameSizeSameMtime(t *testing.T, path string, data []byte) {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(path, &st))
	if int64(len(data)) != st.Size {
		t.Fatalf("same-size rewrite of %s: %d bytes, file has %d", path, len(data), st.Size)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(data, 0)
	must(t, err)
	must(t, f.Close())
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW))
}

// TestSyncCtimeWindowIsLoadBearing forges the index so that the recorded
// ctime equals the file's current one (as when the rewrite lands in the same
// clock tick as the copy): inode, size, mtime and ctime all match, and only
// the window (ctime not older than the pre-copy start) can still catch it.
func TestSyncCtimeWindowIsLoadBearing(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	victim := filepath.Join(e.src, "file.txt")
	before, err := os.ReadFile(victim)
	must(t, err)
	t0 := time.Now()
	e.sync(t, SyncOptions{})
	sameSizeSameMtime(t, victim, bytes.ToUpper(before))

	forge := func(started time.Time) {
		t.Helper()
		idx, status := readIndex(e.index)
		if status != "ok" {
			t.Fatalf("index %s", status)
		}
		var st unix.Stat_t
		must(t, unix.Lstat(victim, &st))
		ent := idx.entries["file.txt"]
		ent.Ctime = st.Ctim.Nano()
		idx.entries["file.txt"] = ent
		idx.started = started.UnixNano()
		must(t, writeIndex(e.index, idx))
	}
	mirrored := func() []byte {
		b, err := os.ReadFile(filepath.Join(e.dst, "file.txt"))
		must(t, err)
		return b
	}

	// Control: with the window closed (index claims a start in the
	// future), nothing distinguishes the file and it is not copied.
	forge(time.Now().Add(time.Hour))
	e.sync(t, SyncOptions{})
	if !bytes.Equal(mirrored(), before) {
		t.Fatal("control: file copied although every recorded attribute matched")
	}
	// The caller's Since reopens the window.
	forge(time.Now().Add(time.Hour))
	e.sync(t, SyncOptions{Since: t0})
	compareTrees(t, e.src, e.dst)

	// And so does the start time the index keeps by itself.
	sameSizeSameMtime(t, victim, before)
	forge(t0)
	e.sync(t, SyncOptions{})
	compareTrees(t, e.src, e.dst)
}

func TestNeedsCopy(t *testing.T) {
	const since = 1_000
	st := unix.Stat_t{Ino: 7, Size: 10, Nlink: 1, Mode: unix.S_IFREG | 0o644,
		Mtim: unix.NsecToTimespec(500), Ctim: unix.NsecToTimespec(600)}
	dst := unix.Stat_t{Ino: 99, Size: 10, Nlink: 1, Mode: unix.S_IFREG | 0o600, Mtim: st.Mtim, Ctim: unix.NsecToTimespec(5_000)}
	ok := entryOf(&st)
	with := func(f func(*indexEntry, *unix.Stat_t, *unix.Stat_t)) (indexEntry, *unix.Stat_t, *unix.Stat_t) {
		e, s, d := ok, st, dst
		f(&e, &s, &d)
		return e, &s, &d
	}
	tests := []struct {
		name   string
		f      func(*indexEntry, *unix.Stat_t, *unix.Stat_t)
		noEnt  bool
		noDst  bool
		wanted bool
	}{
		{name: "unchanged", f: func(*indexEntry, *unix.Stat_t, *unix.Stat_t) {}},
		{name: "mode only (chmod before the window)", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Mode = unix.S_IFREG | 0o600; e.Mode = s.Mode }},
		{name: "no index entry", f: func(*indexEntry, *unix.Stat_t, *unix.Stat_t) {}, noEnt: true, wanted: true},
		{name: "missing in mirror", f: func(*indexEntry, *unix.Stat_t, *unix.Stat_t) {}, noDst: true, wanted: true},
		{name: "size", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Size, d.Size = 11, 11 }, wanted: true},
		{name: "mtime", f: func(e *indexEntry, s, d *unix.Stat_t) {
			s.Mtim, d.Mtim = unix.NsecToTimespec(501), unix.NsecToTimespec(501)
		}, wanted: true},
		{name: "inode", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Ino = 8 }, wanted: true},
		{name: "type", f: func(e *indexEntry, s, d *unix.Stat_t) { e.Mode = unix.S_IFLNK | 0o777 }, wanted: true},
		{name: "ctime moved", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Ctim = unix.NsecToTimespec(700) }, wanted: true},
		{name: "ctime in window", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Ctim = unix.NsecToTimespec(since); e.Ctime = since }, wanted: true},
		{name: "ctime just before window", f: func(e *indexEntry, s, d *unix.Stat_t) { s.Ctim = unix.NsecToTimespec(since - 1); e.Ctime = since - 1 }},
		{name: "mirror size differs", f: func(e *indexEntry, s, d *unix.Stat_t) { d.Size = 3 }, wanted: true},
		{name: "mirror mtime differs", f: func(e *indexEntry, s, d *unix.Stat_t) { d.Mtim = unix.NsecToTimespec(1) }, wanted: true},
		{name: "mirror inode shared", f: func(e *indexEntry, s, d *unix.Stat_t) { d.Nlink = 2 }, wanted: true},
	}
	for _, tt := range tests {
		e, s, d := with(tt.f)
		if tt.noDst {
			d = nil
		}
		if got := needsCopy(e, !tt.noEnt, s, d, since); got != tt.wanted {
			t.Errorf("%s: needsCopy = %v, want %v", tt.name, got, tt.wanted)
		}
	}
}

func TestSyncBadIndexMeansFullRescan(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"missing", func(t *testing.T, p string) { must(t, os.Remove(p)) }, "missing"},
		{"empty", func(t *testing.T, p string) { must(t, os.WriteFile(p, nil, 0o600)) }, "invalid"},
		{"garbage", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("not an index\n"), 0o600)) }, "invalid"},
		{"truncated", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(p, b[:len(b)/2], 0o600))
		}, "invalid"},
		{"bit flip", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			must(t, err)
			b[len(b)/2] ^= 0x10
			must(t, os.WriteFile(p, b, 0o600))
		}, "invalid"},
		{"unreadable", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o700))
		}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSyncEnv(t)
			makeRichTree(t, e.src)
			e.sync(t, SyncOptions{})
			// Changes the damaged index cannot vouch for: a same-size
			// same-mtime rewrite and a stray file in the mirror.
			victim := filepath.Join(e.src, "file.txt")
			b, err := os.ReadFile(victim)
			must(t, err)
			sameSizeSameMtime(t, victim, bytes.ToUpper(b))
			writeFile(t, filepath.Join(e.dst, "deep", "stray"), []byte("x"), 0o644)
			tt.damage(t, e.index)
			stats := e.sync(t, SyncOptions{})
			compareTrees(t, e.src, e.dst)
			if stats.Index != tt.want || stats.Copied+stats.Patched+stats.Linked != stats.Files {
				t.Errorf("stats = %+v, want index %s and every file copied", stats, tt.want)
			}
			if _, status := readIndex(e.index); status != "ok" {
				t.Errorf("index after the pass: %s, want ok", status)
			}
		})
	}
}

func TestSyncWithoutIndexCopiesEverything(t *testing.T) {
	src, dst := tempTree(t), tempTree(t)
	makeRichTree(t, src)
	for range 2 {
		stats, err := Sync(src, dst, SyncOptions{})
		must(t, err)
		if stats.Index != "none" || stats.Copied+stats.Patched+stats.Linked != stats.Files {
			t.Errorf("stats = %+v, want every file copied", stats)
		}
	}
	compareTrees(t, src, dst)
}

// TestSyncNeverFollowsMirrorSymlinks puts symlinks to an outside directory in
// the mirror where the source has directories and files.
func TestSyncNeverFollowsMirrorSymlinks(t *testing.T) {
	e := newSyncEnv(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "keep"), []byte("precious"), 0o644)
	writeFile(t, filepath.Join(outside, "d", "f"), []byte("precious too"), 0o644)
	writeFile(t, filepath.Join(outside, "file"), []byte("precious three"), 0o644)
	want := snapshot(t, outside)

	writeFile(t, filepath.Join(e.src, "d", "f"), []byte("source"), 0o600)
	writeFile(t, filepath.Join(e.src, "d", "new"), []byte("source"), 0o600)
	writeFile(t, filepath.Join(e.src, "a", "b", "c"), []byte("source"), 0o600)
	writeFile(t, filepath.Join(e.src, "file"), []byte("source"), 0o600)
	writeFile(t, filepath.Join(e.src, "keep"), []byte("source"), 0o600)
	must(t, os.Chmod(filepath.Join(e.src, "d"), 0o700))

	must(t, os.Symlink(outside, filepath.Join(e.dst, "d")))
	must(t, os.Symlink(outside, filepath.Join(e.dst, "a")))
	must(t, os.Symlink(filepath.Join(outside, "file"), filepath.Join(e.dst, "file")))
	must(t, os.Symlink(filepath.Join(outside, "keep"), filepath.Join(e.dst, "keep")))
	must(t, os.Symlink(outside, filepath.Join(e.dst, "stray")))

	e.sync(t, SyncOptions{})
	compareTrees(t, e.src, e.dst)
	if got := snapshot(t, outside); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outside directory changed:\ngot  %v\nwant %v", got, want)
	}
}

func TestSyncRefusesSymlinkRoots(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(real, link))
	if _, err := Sync(link, t.TempDir(), SyncOptions{}); err == nil {
		t.Error("symlink as source: no error")
	}
	if _, err := Sync(t.TempDir(), link, SyncOptions{}); err == nil {
		t.Error("symlink as destination: no error")
	}
}

func TestSyncDeviceNodes(t *testing.T) {
	if !canChown(t) {
		t.Skip("device nodes can only be made as root")
	}
	e := newSyncEnv(t)
	writeFile(t, filepath.Join(e.src, "ok"), []byte("fine"), 0o644)
	if err := unix.Mknod(filepath.Join(e.src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod not permitted here: %v", err)
	}
	e.sync(t, SyncOptions{})
	compareTrees(t, e.src, e.dst)

	// Without root the node cannot be made: an error naming it, the rest
	// still synced.
	dst := t.TempDir()
	_, err := Sync(e.src, dst, SyncOptions{notRoot: true})
	if err == nil || !strings.Contains(err.Error(), `"null"`) {
		t.Errorf("unprivileged: err = %v, want one naming \"null\"", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "ok")); string(b) != "fine" {
		t.Errorf("unprivileged: other files not synced")
	}
}

func TestSyncSkipsSockets(t *testing.T) {
	e := newSyncEnv(t)
	sock := filepath.Join(e.src, "s.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	defer unix.Close(fd)
	must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sock}))
	writeFile(t, filepath.Join(e.dst, "s.sock"), []byte("old"), 0o644)
	stats := e.sync(t, SyncOptions{})
	if stats.Skipped != 1 {
		t.Errorf("skipped = %d, want 1", stats.Skipped)
	}
	if _, err := os.Lstat(filepath.Join(e.dst, "s.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mirror still has an entry for the socket: %v", err)
	}
}

func TestIndexRoundTrip(t *testing.T) {
	want := index{started: 42, entries: map[string]indexEntry{
		"a":                      {Ino: 1, Size: 2, Mtime: 3, Ctime: 4, Mode: unix.S_IFREG | 0o644},
		"dir/x\ny ü":             {Ino: 1 << 60, Size: 1 << 40, Mtime: -5, Ctime: 1 << 62, Mode: unix.S_IFREG | 0o4755},
		strings.Repeat("n", 300): {},
	}}
	got, err := decodeIndex(encodeIndex(want))
	must(t, err)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	empty, err := decodeIndex(encodeIndex(index{}))
	if err != nil || len(empty.entries) != 0 {
		t.Errorf("empty index: %v, %v", empty, err)
	}
}

func TestCheckSyncPaths(t *testing.T) {
	tests := []struct {
		src, dst, index string
		ok              bool
	}{
		{"/v/src", "/v/dst", "/v/index", true},
		{"/v/src", "/v/dst", "", true},
		{"/v/src", "/v/dst", "/v/dst/index", false},
		{"/v/src", "/v/dst", "/v/dst", false},
		{"/v/src", "/v/dst", "/v/src/index", false},
		{"/v/src", "/v/src/dst", "", false},
		{"/v/src/..", "/v/dst", "", false},
		{"/v/src", "/v/src", "", false},
		{"/v/src", "/v/srcdst", "/v/src-index", true},
		{"/", "/v/dst", "", false},
	}
	for _, tt := range tests {
		if err := checkSyncPaths(tt.src, tt.dst, tt.index); (err == nil) != tt.ok {
			t.Errorf("checkSyncPaths(%q, %q, %q) = %v, want ok %v", tt.src, tt.dst, tt.index, err, tt.ok)
		}
	}
}

func TestSyncMain(t *testing.T) {
	e := newSyncEnv(t)
	makeRichTree(t, e.src)
	var out bytes.Buffer
	must(t, SyncMain([]string{"--since", "123", "--index", e.index, e.src, e.dst}, &out))
	compareTrees(t, e.src, e.dst)
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("stdout = %q, want one line", out.String())
	}
	var stats map[string]any
	must(t, json.Unmarshal(out.Bytes(), &stats))
	for _, k := range []string{"files", "dirs", "copied", "copied_bytes", "deleted", "meta_updated", "started_unix_nano", "duration_ns", "index"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats lack %q: %s", k, out.String())
		}
	}

	bad := [][]string{
		nil,
		{e.src},
		{e.src, e.dst, "extra"},
		{"--since", "soon", e.src, e.dst},
		{"--bogus", e.src, e.dst},
		{"--index", filepath.Join(e.dst, "index"), e.src, e.dst},
		{"--index", filepath.Join(e.src, "index"), e.src, e.dst},
		{filepath.Join(e.src, "nope"), e.dst},
	}
	for _, args := range bad {
		out.Reset()
		if err := SyncMain(args, &out); err == nil || out.Len() != 0 {
			t.Errorf("SyncMain(%q) = %v, stdout %q; want an error and no stats", args, err, out.String())
		}
	}
	var stderr bytes.Buffer
	if got := Main([]string{"x", protocol.Arg, "sync", e.src}, &stderr); got != 1 || !strings.Contains(stderr.String(), "usage") {
		t.Errorf("Main with one directory = %d (%s), want 1 and usage", got, stderr.String())
	}
}

// TestSyncPartialFailureKeepsGoing: an entry that cannot be synced (here a
// device node in an unprivileged run) is reported, the rest is synced and
// indexed.
func TestSyncPartialFailureKeepsGoing(t *testing.T) {
	e := newSyncEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(e.src, "b"), []byte("b"), 0o644)
	if os.Getuid() != 0 {
		t.Skip("needs root to create the device node")
	}
	if err := unix.Mknod(filepath.Join(e.src, "c"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod not permitted here: %v", err)
	}
	stats, err := Sync(e.src, e.dst, SyncOptions{IndexPath: e.index, notRoot: true})
	if err == nil {
		t.Fatal("no error")
	}
	if stats.Copied != 2 {
		t.Errorf("copied = %d, want 2", stats.Copied)
	}
	idx, status := readIndex(e.index)
	if status != "ok" || len(idx.entries) != 2 {
		t.Errorf("index %s with %d entries, want ok with 2", status, len(idx.entries))
	}
}

// Only filesystems known to stamp ctime in nanoseconds from the local clock
// get the short slack.
func TestCtimeSlack(t *testing.T) {
	if got := ctimeSlack("/proc"); got != coarseSlack {
		t.Errorf("procfs: slack %v, want %v", got, coarseSlack)
	}
	if got := ctimeSlack(filepath.Join(t.TempDir(), "missing")); got != coarseSlack {
		t.Errorf("missing path: slack %v, want %v", got, coarseSlack)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if uint32(st.Type) == unix.EXT4_SUPER_MAGIC || uint32(st.Type) == unix.TMPFS_MAGIC {
		if got := ctimeSlack(t.TempDir()); got != fineSlack {
			t.Errorf("ext4/tmpfs: slack %v, want %v", got, fineSlack)
		}
	}
}
