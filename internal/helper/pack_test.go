package helper

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// fidelityTree builds a tree with every kind of entry an archive keeps.
func fidelityTree(t *testing.T, root bool) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(content), 0o600))
		must(os.Chmod(p, mode))
	}
	write("a.txt", "hello\n", 0o644)
	write("empty", "", 0o600)
	write("sub/dir/deep.bin", strings.Repeat("x", 3<<20+17), 0o640)
	write("with space and ünïcode", "u", 0o644)
	write("new\nline", "n", 0o644)
	write("setuid", "s", 0o4755|os.ModeSetuid)
	must(os.Chmod(filepath.Join(dir, "setuid"), 0o755|os.ModeSetuid))
	must(os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(dir, "sticky"), 0o777|os.ModeSticky))
	must(os.Symlink("a.txt", filepath.Join(dir, "rel-link")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	must(os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "sub/hard")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	if root {
		must(os.Lchown(filepath.Join(dir, "a.txt"), 999, 999))
		must(os.Lchown(filepath.Join(dir, "sub"), 70, 70))
		must(os.Lchown(filepath.Join(dir, "rel-link"), 70, 71))
		must(os.Chmod(filepath.Join(dir, "setuid"), 0o755|os.ModeSetuid)) // chown cleared nothing here, but be explicit
	}
	old := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "a.txt"), old, old))
	must(os.Chtimes(filepath.Join(dir, "sub/dir"), old, old))
	must(unix.Lutimes(filepath.Join(dir, "dangling"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))
	must(os.Chmod(dir, 0o751))
	must(os.Chtimes(dir, old, old))
	return dir
}

type entryInfo struct {
	Mode     fs.FileMode
	Uid, Gid uint32
	Mtime    int64
	Content  string
	Link     string
	Nlink    uint64
}

func describe(t *testing.T, dir string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entryInfo{Mode: fi.Mode(), Uid: st.Uid, Gid: st.Gid, Mtime: fi.ModTime().Unix(), Nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.Content = hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, _ = os.Readlink(p)
		}
		if fi.IsDir() {
			e.Nlink = 0 // depends on the subdirectory count only
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// packed is what the pack reported, with the archive's SHA-256 as the
// plugin computes it afterwards.
type packed struct {
	protocol.PackResult
	SHA256 string
}

func packFile(t *testing.T, src string) (string, packed) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.tar.zst")
	if err := os.WriteFile(path, []byte("token-1"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := PackMain([]string{"--token", "token-1", src, path}, &stdout); err != nil {
		t.Fatalf("pack: %v", err)
	}
	var res packed
	if err := json.Unmarshal(stdout.Bytes(), &res.PackResult); err != nil {
		t.Fatalf("pack output %q: %v", stdout.String(), err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.ArchiveBytes != int64(len(b)) {
		t.Fatalf("pack reported %+v, the file has %d bytes", res.PackResult, len(b))
	}
	sum := sha256.Sum256(b)
	res.SHA256 = hex.EncodeToString(sum[:])
	return path, res
}

func TestPackUnpackRoundTrip(t *testing.T) {
	root := os.Geteuid() == 0
	src := fidelityTree(t, root)
	path, res := packFile(t, src)

	// The archive must pass the same checks as any backup.
	m := &archive.Manifest{Volumes: []archive.Volume{{Name: "v", Archive: filepath.Base(path), ArchiveBytes: res.ArchiveBytes, TarBytes: res.TarBytes, SHA256: res.SHA256}}}
	for _, c := range archive.Verify(t.Context(), filepath.Dir(path), m, archive.SafetyOptions{}) {
		if c.Err != nil {
			t.Fatalf("verify: %v", c.Err)
		}
	}

	dst := t.TempDir()
	// Whatever the volume held before must be gone afterwards.
	if err := os.WriteFile(filepath.Join(dst, "stale"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dst, "a.txt"), 0o755); err != nil { // in the way of a file
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := UnpackMain([]string{"--sha256", res.SHA256, "--size", itoa(res.ArchiveBytes), path, dst}, &stdout); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	want, got := describe(t, src), describe(t, dst)
	if !root {
		for k, e := range want {
			e.Uid, e.Gid = 0, 0
			want[k] = e
		}
		for k, e := range got {
			e.Uid, e.Gid = 0, 0
			got[k] = e
		}
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%q missing after restore", k)
			continue
		}
		if w != g {
			t.Errorf("%q: restored %+v, want %+v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%q left over after restore", k)
		}
	}
	if a, h := mustStat(t, filepath.Join(dst, "a.txt")), mustStat(t, filepath.Join(dst, "sub/hard")); a.Ino != h.Ino {
		t.Errorf("hard link not kept: inodes %d and %d", a.Ino, h.Ino)
	}
}

func mustStat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPackNamesLikeTheEngine(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Pack(src, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, ","); got != "./,./d/,./d/f" {
		t.Fatalf("entry names %s", got)
	}
}

func TestPackRefusesAFileWithoutTheToken(t *testing.T) {
	src := t.TempDir()
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign")
	if err := os.WriteFile(foreign, []byte("someone else's file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "missing"), "foreign": foreign} {
		for _, probe := range []bool{true, false} {
			args := []string{"--token", "tok", src, path}
			if probe {
				args = append([]string{"--probe"}, args...)
			}
			if err := PackMain(args, &bytes.Buffer{}); !errors.Is(err, ErrNotShared) {
				t.Errorf("%s (probe %v): %v, want ErrNotShared", name, probe, err)
			}
		}
	}
	if b, _ := os.ReadFile(foreign); string(b) != "someone else's file" {
		t.Fatalf("foreign file was changed: %q", b)
	}
	if code := Main([]string{"x", protocol.Arg, "pack", "--token", "tok", src, foreign}, &bytes.Buffer{}); code != protocol.ExitNotShared {
		t.Fatalf("exit code %d, want %d", code, protocol.ExitNotShared)
	}
}

func TestUnpackLeavesTheVolumeAloneForAnotherArchive(t *testing.T) {
	src := fidelityTree(t, false)
	path, res := packFile(t, src)
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "keep"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"checksum": {"--sha256", strings.Repeat("0", 64), "--size", itoa(res.ArchiveBytes), path, dst},
		"size":     {"--sha256", res.SHA256, "--size", itoa(res.ArchiveBytes + 1), path, dst},
		"missing":  {"--sha256", res.SHA256, "--size", itoa(res.ArchiveBytes), path + ".gone", dst},
	} {
		if err := UnpackMain(args, &bytes.Buffer{}); !errors.Is(err, ErrNotShared) {
			t.Errorf("%s: %v, want ErrNotShared", name, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "keep")); err != nil || string(b) != "data" {
		t.Fatalf("volume touched: %q, %v", b, err)
	}
}

// hostileArchive compresses a hand-made tar stream.
func hostileArchive(t *testing.T, entries []tar.Header) (string, string, int64) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		h := h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "h.tar.zst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := archive.NewEncoder(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	return path, hex.EncodeToString(sum[:]), int64(len(b))
}

func TestUnpackNeverWritesOutsideTheVolume(t *testing.T) {
	outside := t.TempDir()
	cases := map[string][]tar.Header{
		"dotdot":           {{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}},
		"absolute":         {{Name: filepath.Join(outside, "escape"), Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}},
		"through symlink":  {{Name: "./l", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "./l/escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}},
		"hard link out":    {{Name: "./h", Typeflag: tar.TypeLink, Linkname: filepath.Join(outside, "escape")}},
		"device":           {{Name: "./null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		"symlink then dir": {{Name: "./d", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "./d/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "./d/escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			path, sum, size := hostileArchive(t, entries)
			dst := t.TempDir()
			err := UnpackMain([]string{"--sha256", sum, "--size", itoa(size), path, dst}, &bytes.Buffer{})
			var unsafe *archive.UnsafeEntryError
			if name != "symlink then dir" && !errors.As(err, &unsafe) {
				t.Errorf("unpack: %v, want an unsafe entry error", err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "escape")); err == nil {
				t.Fatal("a file was written outside the volume")
			}
		})
	}
}

func TestUnreachableFilesAreNotShared(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.EACCES, syscall.EPERM} {
		if !notVisible(&fs.PathError{Op: "open", Path: "/out/x", Err: errno}) {
			t.Errorf("%v: want it read as a folder the helper does not share", errno)
		}
	}
	if notVisible(&fs.PathError{Op: "open", Path: "/out/x", Err: syscall.EIO}) {
		t.Error("EIO is a real failure, not a folder the helper does not see")
	}
}

// TestUnpackUpdatesInPlace restores over a volume that still mostly holds
// the backup: only what differs is written, unchanged files keep their
// inodes, and the result is exactly the archived tree.
func TestUnpackUpdatesInPlace(t *testing.T) {
	root := os.Geteuid() == 0
	src := fidelityTree(t, root)
	path, res := packFile(t, src)
	dst := t.TempDir()
	var out bytes.Buffer
	args := []string{"--sha256", res.SHA256, "--size", itoa(res.ArchiveBytes), path, dst}
	if err := UnpackMain(args, &out); err != nil {
		t.Fatal(err)
	}
	// Damage it the way a failed upgrade would.
	big := filepath.Join(dst, "sub/dir/deep.bin")
	bigIno := mustStat(t, big).Ino
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("CHANGED"), 2<<20+5); err != nil { // inside the third 1 MiB chunk
		t.Fatal(err)
	}
	f.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dst, "empty"), []byte("grew"), 0o600))                    // grown
	must(os.Truncate(filepath.Join(dst, "with space and ünïcode"), 0))                        // shrunk
	must(os.Remove(filepath.Join(dst, "rel-link")))                                           // symlink gone
	must(os.Symlink("/etc", filepath.Join(dst, "rel-link")))                                  // ... and pointing elsewhere
	must(os.RemoveAll(filepath.Join(dst, "empty-dir")))                                       // directory gone
	must(os.Symlink("/tmp", filepath.Join(dst, "empty-dir")))                                 // replaced by a symlink
	must(os.MkdirAll(filepath.Join(dst, "new/deeper"), 0o755))                                // extras
	must(os.WriteFile(filepath.Join(dst, "new/deeper/x"), []byte("x"), 0o644))                //
	must(os.Link(filepath.Join(dst, "new/deeper/x"), filepath.Join(dst, "hardlinked-extra"))) //
	must(os.Chmod(filepath.Join(dst, "setuid"), 0o644))                                       // mode changed
	unchanged := mustStat(t, filepath.Join(dst, "with space and ünïcode")).Ino

	out.Reset()
	if err := UnpackMain(args, &out); err != nil {
		t.Fatal(err)
	}
	var ur protocol.UnpackResult
	if err := json.Unmarshal(out.Bytes(), &ur); err != nil {
		t.Fatal(err)
	}
	want, got := describe(t, src), describe(t, dst)
	for k, w := range want {
		if g, ok := got[k]; !ok || (root && g != w) || (!root && (g.Content != w.Content || g.Mode != w.Mode || g.Link != w.Link)) {
			t.Errorf("%q: restored %+v, want %+v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%q left over after restore", k)
		}
	}
	if mustStat(t, big).Ino != bigIno || mustStat(t, filepath.Join(dst, "with space and ünïcode")).Ino != unchanged {
		t.Error("files were replaced instead of updated in place")
	}
	// One chunk of the big file, the grown and the shrunk file: far less
	// than the archive's contents.
	if ur.Written > 1<<20+100 || ur.Written < 1<<20 {
		t.Errorf("wrote %d bytes of %d; want the changed chunk and the two small files only", ur.Written, ur.Bytes)
	}
	if ur.Removed != 2 { // new/ (with what is in it) and hardlinked-extra
		t.Errorf("removed %d entries, want 2", ur.Removed)
	}
	if _, err := os.Lstat("/tmp"); err != nil {
		t.Fatal("the restore followed a symlink out of the volume")
	}
}

// Files larger than a compression frame, with block boundaries at each of
// their starts, come back byte for byte.
func TestPackLargeFilesAcrossFrames(t *testing.T) {
	src := t.TempDir()
	rnd := make([]byte, 9<<20)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i>>9*31 + i>>17)
	}
	text := bytes.Repeat([]byte("half random, half text: the quick brown fox\n"), 1<<18)
	var half []byte
	for i := 0; len(half) < 20<<20; i++ {
		half = append(half, rnd[(i*256<<10)%len(rnd):][:256<<10]...)
		half = append(half, text[:256<<10]...)
	}
	files := map[string][]byte{
		"a/small.txt":  []byte("small\n"),
		"big/half.bin": half,
		"big/rand.bin": rnd,
		"z/tail.txt":   text[:3000],
	}
	for name, b := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, res := packFile(t, src)
	if res.ArchiveBytes >= res.TarBytes {
		t.Errorf("archive %d bytes for %d bytes of tar: nothing compressed", res.ArchiveBytes, res.TarBytes)
	}
	dst := t.TempDir()
	var stdout bytes.Buffer
	if err := UnpackMain([]string{"--sha256", res.SHA256, "--size", itoa(res.ArchiveBytes), path, dst}, &stdout); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: restored %d bytes (%v), want the %d bytes packed", name, len(got), err, len(want))
		}
	}
}

// An archive shorter than what the file held before (here a long token and
// an empty volume) must leave no trailing bytes of it.
func TestPackShorterThanTheToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.tar.zst")
	token := strings.Repeat("t", 4096)
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := PackMain([]string{"--token", token, t.TempDir(), path}, &stdout); err != nil {
		t.Fatalf("pack: %v", err)
	}
	var res protocol.PackResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.ArchiveBytes >= int64(len(token)) || int64(len(b)) != res.ArchiveBytes {
		t.Fatalf("archive of %d bytes, file of %d bytes after a token of %d", res.ArchiveBytes, len(b), len(token))
	}
	sum := sha256.Sum256(b)
	dst := t.TempDir()
	if err := UnpackMain([]string{"--sha256", hex.EncodeToString(sum[:]), "--size", itoa(res.ArchiveBytes), path, dst}, &bytes.Buffer{}); err != nil {
		t.Fatalf("unpack: %v", err)
	}
}

// With --progress, unpack writes progress lines (tar bytes read so far,
// growing) before its result, all through the protocol.
func TestUnpackProgress(t *testing.T) {
	src := t.TempDir()
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	path, res := packFile(t, src)
	var progress []int64
	stream := protocol.NewStream(func(p protocol.Progress) { progress = append(progress, p.Bytes) })
	args := protocol.Argv(&protocol.Unpack{SHA256: res.SHA256, Size: res.ArchiveBytes, Progress: time.Nanosecond, Archive: path, Dir: t.TempDir()})
	if err := UnpackMain(args[3:], stream); err != nil {
		t.Fatal(err)
	}
	var ur protocol.UnpackResult
	if err := stream.Result(&ur); err != nil {
		t.Fatal(err)
	}
	if ur.Files != 1 || ur.Bytes != int64(len(big)) {
		t.Errorf("result %+v, want the one file of %d bytes", ur, len(big))
	}
	if len(progress) < 2 {
		t.Fatalf("%d progress lines, want several", len(progress))
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] {
			t.Errorf("progress went back: %v", progress)
		}
	}
	if last := progress[len(progress)-1]; last > res.TarBytes {
		t.Errorf("progress %d beyond the tar's %d bytes", last, res.TarBytes)
	}
}

// TestPackDropLarge: with drop, each large file with one link is removed
// once it is in the archive, and the archive still holds every file whole;
// small files and hard-linked ones stay.
func TestPackDropLarge(t *testing.T) {
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16)
	must(t, os.WriteFile(filepath.Join(src, "big"), big, 0o600))
	must(t, os.WriteFile(filepath.Join(src, "linked"), big, 0o600))
	must(t, os.Link(filepath.Join(src, "linked"), filepath.Join(src, "linked2")))
	must(t, os.WriteFile(filepath.Join(src, "small"), []byte("small"), 0o600))
	var buf bytes.Buffer
	res, err := PackTo(src, &buf, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 1 {
		t.Errorf("dropped %d files, want 1 (big)", res.Dropped)
	}
	for name, want := range map[string]bool{"big": false, "linked": true, "linked2": true, "small": true} {
		if _, err := os.Lstat(filepath.Join(src, name)); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", name, err == nil, want)
		}
	}
	dec, err := archive.NewDecoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	got := map[string]int{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[h.Name] = len(data)
		if h.Name == "./big" && !bytes.Equal(data, big) {
			t.Error("the dropped file's content in the archive differs")
		}
	}
	if got["./big"] != len(big) || got["./small"] != 5 || got["./linked"] != len(big) {
		t.Errorf("archive entries %v", got)
	}
}
