package helper

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dbFile is a database-like file: pages rewritten at random offsets.
type dbFile struct {
	t    *testing.T
	rng  *rand.Rand
	path string
}

func (d dbFile) open() *os.File {
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	return f
}

func (d dbFile) size() int64 {
	fi, err := os.Stat(d.path)
	if err != nil {
		d.t.Fatal(err)
	}
	return fi.Size()
}

func (d dbFile) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(d.rng.Uint32())
	}
	return b
}

// step applies one random change: page writes, a truncation, an extension,
// a hole, or a same-size rewrite that keeps the mtime.
func (d dbFile) step() {
	f := d.open()
	defer f.Close()
	size := d.size()
	switch op := d.rng.IntN(10); {
	case op < 5: // a few 8 KiB pages somewhere
		for range 1 + d.rng.IntN(5) {
			off := d.rng.Int64N(max(size, 1)) &^ 8191
			if _, err := f.WriteAt(d.randBytes(8192), off); err != nil {
				d.t.Fatal(err)
			}
		}
	case op == 5: // truncate
		if err := f.Truncate(size / 2); err != nil {
			d.t.Fatal(err)
		}
	case op == 6: // extend with data
		if _, err := f.WriteAt(d.randBytes(200_000), size); err != nil {
			d.t.Fatal(err)
		}
	case op == 7: // a hole: punch one, or write beyond the end
		if d.rng.IntN(2) == 0 && size > 3<<20 {
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 1<<20, 1<<20); err != nil {
				d.t.Fatal(err)
			}
		} else if _, err := f.WriteAt([]byte("tail"), size+3<<20); err != nil {
			d.t.Fatal(err)
		}
	default: // same size, same mtime, other bytes
		fi, _ := f.Stat()
		off := d.rng.Int64N(max(size, 1))
		if _, err := f.WriteAt([]byte{byte(d.rng.Uint32())}, off); err != nil {
			d.t.Fatal(err)
		}
		if err := os.Chtimes(d.path, fi.ModTime(), fi.ModTime()); err != nil {
			d.t.Fatal(err)
		}
	}
}

// TestSyncBlockDelta is the sync property extended to blocks: large files
// changed page by page, truncated, extended, holed and rewritten at the
// same size and mtime, also while the pre-copy runs, end up exactly equal
// to the source after the delta sync, holes still holes, and the delta
// writes far less than the files' size.
func TestSyncBlockDelta(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 0xb10c))
			e := newSyncEnv(t)
			var files []dbFile
			for i := range 3 {
				d := dbFile{t: t, rng: rng, path: filepath.Join(e.src, fmt.Sprintf("base/%d", i))}
				os.MkdirAll(filepath.Dir(d.path), 0o755)
				f := d.open()
				f.Write(d.randBytes((2 + rng.IntN(6)) << 20))
				if i == 0 { // sparse from the start
					f.WriteAt([]byte("end"), 12<<20)
				}
				f.Close()
				files = append(files, d)
			}
			e.sync(t, SyncOptions{})
			for range 5 {
				files[rng.IntN(len(files))].step()
			}
			var hook func(string)
			if seed%2 == 1 {
				hook = func(string) { files[rng.IntN(len(files))].step() }
			}
			t0 := time.Now()
			e.sync(t, SyncOptions{afterCopy: hook})
			var total int64
			for range 1 + rng.IntN(6) {
				files[rng.IntN(len(files))].step()
			}
			for _, d := range files {
				total += d.size()
			}
			stats := e.sync(t, SyncOptions{Since: t0, KeepIndex: true})
			compareTrees(t, e.src, e.dst)
			for _, d := range files {
				rel, _ := filepath.Rel(e.src, d.path)
				var s, m unix.Stat_t
				unix.Stat(d.path, &s)
				unix.Stat(filepath.Join(e.dst, rel), &m)
				if m.Blocks > s.Blocks+2*(deltaChunk/512) {
					t.Errorf("%s: mirror allocates %d blocks, source %d: holes were filled", rel, m.Blocks, s.Blocks)
				}
			}
			if stats.Patched == 0 {
				t.Errorf("no file was patched: %+v", stats)
			}
			if stats.PatchedBytes > total/2 {
				t.Errorf("the delta wrote %d of %d bytes", stats.PatchedBytes, total)
			}
		})
	}
}

func TestPatchFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := bytes.Repeat([]byte("0123456789abcdef"), 3*deltaChunk/16) // 3 MiB
	changed := bytes.Clone(base)
	copy(changed[deltaBlock*5+100:], "changed page")
	copy(changed[2*deltaChunk+7:], "and another")
	for _, tc := range []struct {
		name        string
		src, mirror []byte
		maxWritten  int64
	}{
		{"same", base, base, 0},
		{"two pages", changed, base, 2 * deltaBlock},
		{"grown", append(bytes.Clone(base), "more"...), base, deltaBlock},
		{"shrunk", base[:deltaChunk+5], base, 0},
		{"mirror empty", base, nil, int64(len(base))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := write("src-"+tc.name, tc.src)
			mir := write("mir-"+tc.name, tc.mirror)
			in, _ := unix.Open(src, unix.O_RDONLY, 0)
			defer unix.Close(in)
			out, _ := unix.Open(mir, unix.O_RDWR, 0)
			res, err := patchFile(out, in, int64(len(tc.src)))
			unix.Close(out)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(mir)
			if !bytes.Equal(got, tc.src) {
				t.Errorf("mirror differs from source after the patch")
			}
			if res.written > tc.maxWritten {
				t.Errorf("wrote %d bytes, want at most %d", res.written, tc.maxWritten)
			}
		})
	}
}

// TestPatchFileInPieces: a file larger than one piece, with a hole, is
// compared on several goroutines; the result is the source exactly, the
// hole stays a hole, and only the changed pages are written.
func TestPatchFileInPieces(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	size := int64(2*deltaPiece + deltaPiece/2 + 123)
	base := make([]byte, size)
	for i := range base {
		base[i] = byte(rng.Uint32())
	}
	hole := [2]int64{deltaPiece - 1<<20, deltaPiece + 3<<20} // across a piece boundary
	write := func(name string, data []byte, punch bool) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if punch {
			fd, _ := unix.Open(p, unix.O_RDWR, 0)
			defer unix.Close(fd)
			if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, hole[0], hole[1]-hole[0]); err != nil {
				t.Skipf("no hole punching here: %v", err)
			}
		}
		return p
	}
	changed := bytes.Clone(base)
	pages := []int64{8192, deltaPiece + 5<<20, 2*deltaPiece + 8192*3, size - 10}
	for _, off := range pages {
		copy(changed[off:], "a changed page")
	}
	clear(changed[hole[0]:hole[1]])
	src := write("src", changed, true)
	mir := write("mir", base, false)
	in, _ := unix.Open(src, unix.O_RDONLY, 0)
	defer unix.Close(in)
	out, _ := unix.Open(mir, unix.O_RDWR, 0)
	res, err := patchFile(out, in, size)
	unix.Close(out)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(mir)
	if !bytes.Equal(got, changed) {
		t.Fatal("mirror differs from source after the patch")
	}
	if most := int64(len(pages)) * 2 * deltaBlock; res.written > most {
		t.Errorf("wrote %d bytes, want at most %d", res.written, most)
	}
	var s, m unix.Stat_t
	unix.Stat(src, &s)
	unix.Stat(mir, &m)
	if m.Blocks > s.Blocks {
		t.Errorf("mirror allocates %d blocks, source %d: the hole was filled", m.Blocks, s.Blocks)
	}
}
