package helper

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Benchmarks of the delta-sync on a tree shaped like the benchmark
// volume: 20,000 small text files plus large files. The large part is
// AUTOBACKUP_BENCH_MB megabytes (default 64; 900 gives the ~1 GB set):
//
//	AUTOBACKUP_BENCH_MB=900 go test -run '^$' -bench Sync -benchtime 10x ./helper/

func benchTree(b *testing.B) (src string) {
	b.Helper()
	mb := 64
	if v := os.Getenv("AUTOBACKUP_BENCH_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	src = b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	line := []byte("lorem ipsum dolor sit amet, consectetur adipiscing elit\n")
	for i := range 20_000 {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", i%200))
		if i < 200 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		data := make([]byte, 0, 2048)
		for range 1 + rng.IntN(30) {
			data = append(data, line...)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.txt", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	chunk := make([]byte, 1<<20)
	for i := range mb {
		if i%256 == 0 {
			f, err := os.Create(filepath.Join(src, fmt.Sprintf("large%d.bin", i/256)))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
		}
		for j := range chunk {
			chunk[j] = byte(rng.UintN(256))
		}
		f, err := os.OpenFile(filepath.Join(src, fmt.Sprintf("large%d.bin", i/256)), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	time.Sleep(ctimeSlack(src)) // older than the ctime window, as data usually is
	return src
}

func BenchmarkSyncNoChange(b *testing.B) {
	src := benchTree(b)
	dst, index := b.TempDir(), filepath.Join(b.TempDir(), "index")
	start := time.Now()
	if _, err := Sync(src, dst, SyncOptions{IndexPath: index}); err != nil {
		b.Fatal(err)
	}
	b.Logf("initial copy: %v", time.Since(start))
	since := time.Now()
	for b.Loop() {
		stats, err := Sync(src, dst, SyncOptions{IndexPath: index, Since: since})
		if err != nil {
			b.Fatal(err)
		}
		if stats.Copied+stats.Patched != 0 {
			b.Fatalf("copied %d files of an unchanged tree", stats.Copied)
		}
	}
}

// BenchmarkSyncOnePercent changes 1 % of the small files (and appends to a
// large file) before each pass; only the pass is timed.
func BenchmarkSyncOnePercent(b *testing.B) {
	src := benchTree(b)
	dst, index := b.TempDir(), filepath.Join(b.TempDir(), "index")
	if _, err := Sync(src, dst, SyncOptions{IndexPath: index}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		b.StopTimer()
		for range 200 {
			i := rng.IntN(20_000)
			p := filepath.Join(src, fmt.Sprintf("d%03d", i%200), fmt.Sprintf("f%05d.txt", i))
			if err := os.WriteFile(p, []byte(fmt.Sprintf("changed %d\n", rng.Int())), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		f, err := os.OpenFile(filepath.Join(src, "large0.bin"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(make([]byte, 4096))
		f.Close()
		since := time.Now()
		b.StartTimer()
		if _, err := Sync(src, dst, SyncOptions{IndexPath: index, Since: since}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPack archives the benchmark tree as `__helper pack` does (tar,
// zstd level 3 on all cores, SHA-256), into io.Discard.
func BenchmarkPack(b *testing.B) {
	src := benchTree(b)
	var size int64
	for b.Loop() {
		res, err := PackTo(src, io.Discard, 3, false)
		if err != nil {
			b.Fatal(err)
		}
		size = res.TarBytes
	}
	b.SetBytes(size)
}

// BenchmarkPatchDatabaseFile: the stopped phase's work on one large
// database file (AUTOBACKUP_BENCH_MB, default 64) in the page cache, with
// one 8 KiB page in 200 rewritten at random since the mirror was made.
func BenchmarkPatchDatabaseFile(b *testing.B) {
	mb := 64
	if v := os.Getenv("AUTOBACKUP_BENCH_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, mb<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src, mir := filepath.Join(dir, "src"), filepath.Join(dir, "mir")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(mir, data, 0o644); err != nil {
		b.Fatal(err)
	}
	sf, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer sf.Close()
	mf, err := os.OpenFile(mir, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer mf.Close()
	page := make([]byte, 8192)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for range len(data) / 8192 / 200 {
			for i := range page {
				page[i] = byte(rng.Uint32())
			}
			sf.WriteAt(page, rng.Int64N(int64(len(data)/8192))*8192)
		}
		b.StartTimer()
		if _, err := patchFile(int(mf.Fd()), int(sf.Fd()), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
