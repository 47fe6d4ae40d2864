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

	"golang.org/x/sys/unix"
)

func TestChangedRanges(t *testing.T) {
	ext := func(l, p, n uint64) extent { return extent{logical: l, physical: p, length: n} }
	for _, tc := range []struct {
		name     string
		src, dst []extent
		size     uint64
		want     [][2]uint64
	}{
		{"same", []extent{ext(0, 1000, 100)}, []extent{ext(0, 1000, 100)}, 100, nil},
		{"split differently", []extent{ext(0, 1000, 100)}, []extent{ext(0, 1000, 40), ext(40, 1040, 60)}, 100, nil},
		{"one range moved", []extent{ext(0, 1000, 40), ext(40, 5000, 20), ext(60, 1060, 40)},
			[]extent{ext(0, 1000, 100)}, 100, [][2]uint64{{40, 60}}},
		{"adjacent changes merged", []extent{ext(0, 5000, 20), ext(20, 7000, 20), ext(40, 1040, 60)},
			[]extent{ext(0, 1000, 100)}, 100, [][2]uint64{{0, 40}}},
		{"hole in both", []extent{ext(50, 1050, 50)}, []extent{ext(50, 1050, 50)}, 100, nil},
		{"hole in the source only", []extent{ext(50, 1050, 50)}, []extent{ext(0, 1000, 100)}, 100, [][2]uint64{{0, 50}}},
		{"data beyond the mirror's extents", []extent{ext(0, 1000, 100), ext(100, 9000, 50)},
			[]extent{ext(0, 1000, 100)}, 150, [][2]uint64{{100, 150}}},
		{"delalloc is never unchanged", []extent{{logical: 0, physical: 1000, length: 100, flags: 0x4}},
			[]extent{ext(0, 1000, 100)}, 100, [][2]uint64{{0, 100}}},
		{"unwritten against written", []extent{{logical: 0, physical: 1000, length: 100, flags: fiemapExtentUnwritten}},
			[]extent{ext(0, 1000, 100)}, 100, [][2]uint64{{0, 100}}},
		{"same disk, other offset", []extent{ext(0, 1000, 100)}, []extent{ext(0, 1010, 100)}, 100, [][2]uint64{{0, 100}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changedRanges(tc.src, tc.dst, tc.size)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// xfsDir returns a directory on a reflink-capable xfs: a loop mount made
// for the test, which needs root and mkfs.xfs; skipped elsewhere.
func xfsDir(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("xfs: needs root to mount a loop device")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("xfs: mkfs.xfs missing (apt-get install xfsprogs)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "xfs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skip("xfs: mount -o loop failed: " + strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// TestRelinkChanged: on xfs, a mirror cloned from the source and then left
// behind by page writes, an extension, a punched hole and a truncation is
// brought up to date by re-linking only what changed; a mirror that is a
// plain copy (nothing shared) is re-linked whole. Either way it ends up
// equal to the source, sharing all its extents, holes staying holes.
func TestRelinkChanged(t *testing.T) {
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
		most   int64 // re-linked bytes at most
	}{
		{"pages", true, func(f *os.File) {
			for range 20 {
				off := rng.Int64N(int64(len(data))) &^ 8191
				f.WriteAt(bytes.Repeat([]byte{byte(rng.Uint32())}, 8192), off)
			}
			f.Sync()
		}, 20 * (1 << 20)},
		{"dirty pages, not flushed", true, func(f *os.File) {
			f.WriteAt([]byte("not yet on disk"), 5<<20+3)
		}, 1 << 20},
		{"extended and holed", true, func(f *os.File) {
			f.WriteAt([]byte("tail"), int64(len(data))+5<<20)
			unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 2<<20, 1<<20)
		}, 3 << 20},
		{"truncated", true, func(f *os.File) { f.Truncate(int64(len(data))/2 + 100) }, 1 << 20},
		{"unchanged", true, func(*os.File) {}, 0},
		{"plain copy", false, func(f *os.File) { f.WriteAt([]byte("x"), 7) }, int64(len(data))},
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
			res, err := relinkChanged(int(mf.Fd()), int(sf.Fd()), fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(src)
			got, _ := os.ReadFile(mir)
			if !bytes.Equal(got, want) {
				t.Fatalf("mirror differs from the source (%d vs %d bytes)", len(got), len(want))
			}
			if res.written > tc.most {
				t.Errorf("re-linked %d bytes, want at most %d", res.written, tc.most)
			}
			if res.compared != 0 {
				t.Errorf("compared %d bytes, want 0 (nothing read)", res.compared)
			}
			// Afterwards the two share every extent (holes included): a
			// second pass has nothing to re-link.
			se, err := extents(int(sf.Fd()), fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			me, err := extents(int(mf.Fd()), fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			if left := changedRanges(se, me, uint64(fi.Size())); len(left) != 0 {
				t.Errorf("after the re-link, source and mirror still differ in %v", left)
			}
		})
	}
}

func TestRelinkChangedElsewhere(t *testing.T) {
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
	if _, err := relinkChanged(out, in, 6); !errors.Is(err, errNotPatchable) {
		t.Fatalf("relinkChanged off xfs: %v, want errNotPatchable", err)
	}
	if got, _ := os.ReadFile(mir); string(got) != "mirror" {
		t.Errorf("mirror changed to %q", got)
	}
}
