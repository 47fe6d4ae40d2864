package helper

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The extent maps of two files (FIEMAP), to check that they share every
// extent: struct fiemap and struct fiemap_extent of linux/fiemap.h.

const fsIocFiemap = 0xC020660B // _IOWR('f', 11, struct fiemap)

type fiemapExtent struct {
	Logical, Physical, Length uint64
	_                         [2]uint64
	Flags                     uint32
	_                         [3]uint32
}

type fiemapReq struct {
	Start, Length        uint64
	Flags, Mapped, Count uint32
	_                    uint32
	Extents              [256]fiemapExtent
}

type extent struct{ logical, physical, length uint64 }

func extents(t *testing.T, fd int, size int64) []extent {
	t.Helper()
	var out []extent
	req := new(fiemapReq)
	for start := uint64(0); start < uint64(size); {
		*req = fiemapReq{Start: start, Length: uint64(size) - start, Flags: 1 /* sync */, Count: 256}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFiemap, uintptr(unsafe.Pointer(req))); errno != 0 {
			t.Fatalf("FIEMAP: %v", errno)
		}
		if req.Mapped == 0 {
			break
		}
		for _, e := range req.Extents[:req.Mapped] {
			out = append(out, extent{e.Logical, e.Physical, e.Length})
		}
		last := req.Extents[req.Mapped-1]
		if last.Flags&1 != 0 { // the last extent
			break
		}
		start = last.Logical + last.Length
	}
	return out
}

// unshared returns the bytes of [0, size) where a and b do not map the
// same disk blocks (a hole in both counts as shared).
func unshared(a, b []extent, size uint64) uint64 {
	at := func(es []extent, pos uint64) (end, phys uint64, mapped bool) {
		for _, e := range es {
			switch {
			case pos < e.logical:
				return e.logical, 0, false
			case pos < e.logical+e.length:
				return e.logical + e.length, e.physical + pos - e.logical, true
			}
		}
		return size, 0, false
	}
	var n uint64
	for pos := uint64(0); pos < size; {
		ea, pa, ma := at(a, pos)
		eb, pb, mb := at(b, pos)
		end := min(ea, eb, size)
		if ma != mb || ma && pa != pb {
			n += end - pos
		}
		pos = end
	}
	return n
}

// xfsDir returns a directory on a reflink-capable xfs: a loop mount made
// for the test, which needs root and mkfs.xfs.
func xfsDir(t *testing.T) string { return loopDir(t, "xfs", "-q", "-m", "reflink=1") }

// loopDir returns the root of a file system of type fs (mkfs.fs with args)
// on a loop device made for the test. It needs root and mkfs.fs: skipped
// without them, failed without them when CI=true (.ci/run installs
// xfsprogs and btrfs-progs).
func loopDir(t *testing.T, fs string, args ...string) string {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %s (CI=true: the test must run)", fs, why)
		}
		t.Skip(fs + ": " + why)
	}
	if os.Getuid() != 0 {
		need("needs root to mount a loop device")
	}
	if _, err := exec.LookPath("mkfs." + fs); err != nil {
		need("mkfs." + fs + " missing")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, fs+".img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs."+fs, append(args, img)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.%s: %v\n%s", fs, err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		need("mount -o loop failed: " + strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// TestRelinkFile: on xfs, a mirror cloned from the source and then left
// behind by page writes (flushed or not), an extension, a punched hole and
// a truncation, or a mirror that is a plain copy (nothing shared), ends up
// equal to the source and sharing all its extents, holes staying holes,
// with nothing read.
func TestRelinkFile(t *testing.T) {
	dir := xfsDir(t)
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name   string
		cloned bool
		change func(f *os.File)
	}{
		{"pages", true, func(f *os.File) {
			for range 20 {
				off := rng.Int64N(int64(len(data))) &^ 8191
				f.WriteAt(bytes.Repeat([]byte{byte(rng.Uint32())}, 8192), off)
			}
			f.Sync()
		}},
		{"dirty pages, not flushed", true, func(f *os.File) {
			f.WriteAt([]byte("not yet on disk"), 5<<20+3)
		}},
		{"extended and holed", true, func(f *os.File) {
			f.WriteAt([]byte("tail"), int64(len(data))+5<<20)
			unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 2<<20, 1<<20)
		}},
		{"truncated, unaligned", true, func(f *os.File) { f.Truncate(int64(len(data))/2 + 100) }},
		{"unchanged", true, func(*os.File) {}},
		{"plain copy", false, func(f *os.File) { f.WriteAt([]byte("x"), 7) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, mir := filepath.Join(dir, "src-"+tc.name), filepath.Join(dir, "mir-"+tc.name)
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			sf, err := os.OpenFile(src, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer sf.Close()
			mf, err := os.Create(mir)
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			if tc.cloned {
				if err := unix.IoctlFileClone(int(mf.Fd()), int(sf.Fd())); err != nil {
					t.Fatal(err)
				}
			} else if _, err := mf.Write(data); err != nil {
				t.Fatal(err)
			}
			tc.change(sf)
			fi, _ := sf.Stat()
			res, err := relinkFile(int(mf.Fd()), int(sf.Fd()), fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(src)
			got, _ := os.ReadFile(mir)
			if !bytes.Equal(got, want) {
				t.Fatalf("mirror differs from the source (%d vs %d bytes)", len(got), len(want))
			}
			if res.compared != 0 || res.written != 0 {
				t.Errorf("compared %d and wrote %d bytes, want 0: a clone reads and writes nothing", res.compared, res.written)
			}
			if n := unshared(extents(t, int(sf.Fd()), fi.Size()), extents(t, int(mf.Fd()), fi.Size()), uint64(fi.Size())); n != 0 {
				t.Errorf("after the re-link, %d bytes of the mirror are not shared with the source", n)
			}
		})
	}
}

func TestRelinkFileElsewhere(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || uint32(fs.Type) == unix.XFS_SUPER_MAGIC {
		t.Skip("the temporary directory is on xfs")
	}
	src, mir := filepath.Join(dir, "src"), filepath.Join(dir, "mir")
	os.WriteFile(src, []byte("source"), 0o644)
	os.WriteFile(mir, []byte("mirror"), 0o644)
	in, _ := unix.Open(src, unix.O_RDONLY, 0)
	defer unix.Close(in)
	out, _ := unix.Open(mir, unix.O_RDWR, 0)
	defer unix.Close(out)
	if _, err := relinkFile(out, in, 6); !errors.Is(err, errNotPatchable) {
		t.Fatalf("relinkFile off xfs: %v, want errNotPatchable", err)
	}
	if got, _ := os.ReadFile(mir); string(got) != "mirror" {
		t.Errorf("mirror changed to %q", got)
	}
}

// TestSyncDeferLarge: on xfs and btrfs, a pre-copy with DeferLarge mirrors
// the small files and leaves the large ones (plain and sparse) out of the
// mirror and the index, removing an earlier clone of one; the pass while
// stopped then clones them, so the mirror equals the source with every
// large file sharing all its extents (nothing copied byte by byte).
func TestSyncDeferLarge(t *testing.T) {
	t.Run("xfs", func(t *testing.T) { testSyncDeferLarge(t, xfsDir(t)) })
	t.Run("btrfs", func(t *testing.T) { testSyncDeferLarge(t, loopDir(t, "btrfs", "-q")) })
}

func testSyncDeferLarge(t *testing.T, dir string) {
	e := syncEnv{src: filepath.Join(dir, "src"), dst: filepath.Join(dir, "mirror"), index: filepath.Join(dir, "index")}
	must(t, os.MkdirAll(filepath.Join(e.src, "base"), 0o755))
	rng := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 3*minDelta+123)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	writeFile(t, filepath.Join(e.src, "base", "table"), big, 0o600)
	writeFile(t, filepath.Join(e.src, "small"), []byte("a small file"), 0o644)
	// Sparse: 8 MiB with data only at both ends.
	sparse, err := os.Create(filepath.Join(e.src, "base", "sparse"))
	must(t, err)
	sparse.WriteAt(big[:minDelta], 0)
	sparse.WriteAt([]byte("end"), 8<<20)
	must(t, sparse.Close())
	time.Sleep(2 * fineSlack) // so that the small file is trusted from the index

	pre := e.sync(t, SyncOptions{DeferLarge: true})
	if !pre.Clone || pre.Deferred != 2 || pre.DeferredBytes != int64(len(big))+8<<20+3 || pre.Unshared != 0 {
		t.Fatalf("pre-copy stats = %+v, want clones, 2 large files deferred and none unshared", pre)
	}
	for _, rel := range []string{"base/table", "base/sparse"} {
		if _, err := os.Lstat(filepath.Join(e.dst, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is in the mirror after a deferring pre-copy (err %v)", rel, err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(e.dst, "small")); string(got) != "a small file" {
		t.Errorf("small file in the mirror = %q", got)
	}

	// The pass while stopped clones what was deferred.
	for round := range 2 {
		delta := e.sync(t, SyncOptions{KeepIndex: true})
		if delta.Copied != 2 || delta.Deferred != 0 {
			t.Fatalf("round %d: delta stats = %+v, want the 2 large files copied", round, delta)
		}
		compareTrees(t, e.src, e.dst)
		for _, rel := range []string{"base/table", "base/sparse"} {
			sf, err := os.Open(filepath.Join(e.src, rel))
			must(t, err)
			mf, err := os.Open(filepath.Join(e.dst, rel))
			must(t, err)
			fi, _ := sf.Stat()
			// The sparse file's last data segment ends in a partial
			// block, which a range clone cannot share: it is copied.
			if n := unshared(extents(t, int(sf.Fd()), fi.Size()), extents(t, int(mf.Fd()), fi.Size()), uint64(fi.Size())); n >= 4096 {
				t.Errorf("round %d: %s: %d bytes of the clone are not shared with the source", round, rel, n)
			}
			var st unix.Stat_t
			must(t, unix.Fstat(int(mf.Fd()), &st))
			if rel == "base/sparse" && st.Blocks*512 >= fi.Size() {
				t.Errorf("round %d: the sparse file's clone allocates %d bytes of %d: its holes were filled", round, st.Blocks*512, fi.Size())
			}
			sf.Close()
			mf.Close()
		}
		// The application writes again, then the next pre-copy (or the
		// pass after the archive) drops the clones.
		f, err := os.OpenFile(filepath.Join(e.src, "base", "table"), os.O_RDWR, 0)
		must(t, err)
		f.WriteAt([]byte("page rewritten"), minDelta+8192)
		must(t, f.Close())
		after := e.sync(t, SyncOptions{DeferLarge: true})
		if after.Deferred != 2 || after.Unshared != 2 {
			t.Fatalf("round %d: pass after the archive = %+v, want 2 deferred and 2 clones dropped", round, after)
		}
		for _, rel := range []string{"base/table", "base/sparse"} {
			if _, err := os.Lstat(filepath.Join(e.dst, rel)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("round %d: the clone of %s is still in the mirror (err %v)", round, rel, err)
			}
		}
	}
}

// TestSyncDeferLargeElsewhere: where copies are not reflinks, DeferLarge
// changes nothing: the pre-copy mirrors the large files too.
func TestSyncDeferLargeElsewhere(t *testing.T) {
	e := newSyncEnv(t)
	if preferClone(e.src, e.dst) {
		t.Skip("the temporary directory shares extents (xfs or btrfs)")
	}
	writeFile(t, filepath.Join(e.src, "table"), bytes.Repeat([]byte("x"), 2*minDelta), 0o600)
	st := e.sync(t, SyncOptions{DeferLarge: true})
	if st.Clone || st.Deferred != 0 || st.Copied != 1 {
		t.Fatalf("stats = %+v, want the large file copied, nothing deferred", st)
	}
	compareTrees(t, e.src, e.dst)
}
