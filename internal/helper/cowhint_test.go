package helper

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cowHint returns path's fsxattr flag and COW extent size hint.
func cowHint(t *testing.T, path string) (bool, uint32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fa, err := getFsxattr(int(f.Fd()))
	if err != nil {
		t.Fatalf("FS_IOC_FSGETXATTR %s: %v", path, err)
	}
	return fa.Xflags&fsXflagCowExtSize != 0, fa.Cowextsize
}

// TestCowHints, on a real xfs: the directories and the large files with
// one link get a one-block hint, small files, hard-linked files and a
// hint of the file's own are left alone, no content changes, new files
// inherit it from their folder, and a read-only mount is counted as
// failed, not an error.
func TestCowHints(t *testing.T) {
	dir := xfsDir(t)
	src, stage := filepath.Join(dir, "src"), filepath.Join(dir, "stage")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(t, os.Mkdir(stage, 0o755))
	big := bytes.Repeat([]byte("database page "), 200_000) // 2.8 MB
	files := map[string][]byte{
		"big":        big,
		"small":      []byte("4 KiB at most"),
		"sub/big2":   big[:minDelta],
		"linked":     big,
		"own":        big,
		"sub/small2": big[:minDelta-1],
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data, 0o600)
	}
	must(t, os.Link(filepath.Join(src, "linked"), filepath.Join(dir, "linked-elsewhere")))
	own, err := os.Open(filepath.Join(src, "own"))
	must(t, err)
	fa, err := getFsxattr(int(own.Fd()))
	must(t, err)
	fa.Xflags |= fsXflagCowExtSize
	fa.Cowextsize = 16 << 12
	must(t, setFsxattr(int(own.Fd()), &fa))
	own.Close()

	// src, sub, big, sub/big2.
	if n, err := CountUnhinted(src); err != nil || n != 4 {
		t.Fatalf("CountUnhinted = %d, %v; want 4", n, err)
	}
	sp, err := MeasureSpace(src, stage)
	if err != nil || !sp.Reflink || sp.Unhinted != 4 {
		t.Fatalf("MeasureSpace = %+v, %v; want reflink and 4 unhinted", sp, err)
	}

	res, err := SetCowHints(src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Dirs != 2 || res.Kept != 1 || res.Failed != 0 {
		t.Errorf("SetCowHints = %+v; want 2 files, 2 folders, 1 kept, none failed", res)
	}
	for rel, want := range map[string]uint32{".": 4096, "sub": 4096, "big": 4096, "sub/big2": 4096, "own": 16 << 12} {
		if set, size := cowHint(t, filepath.Join(src, rel)); !set || size != want {
			t.Errorf("%s: hint %v, %d; want %d", rel, set, size, want)
		}
	}
	for _, rel := range []string{"small", "linked", "sub/small2"} {
		if set, _ := cowHint(t, filepath.Join(src, rel)); set {
			t.Errorf("%s: given a hint; only large files with one link are", rel)
		}
	}
	for rel, data := range files {
		if got, err := os.ReadFile(filepath.Join(src, rel)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s changed: %v", rel, err)
		}
	}
	writeFile(t, filepath.Join(src, "sub", "new"), big, 0o600)
	if set, size := cowHint(t, filepath.Join(src, "sub", "new")); !set || size != 4096 {
		t.Errorf("a new file did not inherit its folder's hint: %v, %d", set, size)
	}
	if n, err := CountUnhinted(src); err != nil || n != 0 {
		t.Errorf("CountUnhinted after = %d, %v; want 0", n, err)
	}

	// Read-only, as the sync helpers mount the source: counted, kept going.
	// (Outside src, whose new files inherit the hint.)
	other := filepath.Join(dir, "other")
	must(t, os.Mkdir(other, 0o755))
	writeFile(t, filepath.Join(other, "big"), big, 0o600)
	ro := filepath.Join(dir, "ro")
	must(t, os.Mkdir(ro, 0o755))
	if out, err := exec.Command("mount", "--bind", other, ro).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v: %s", err, out)
	}
	res, err = SetCowHints(ro)
	if err != nil || res.Failed != 2 || !strings.Contains(res.Error, "read-only") {
		t.Errorf("SetCowHints on a read-only mount = %+v, %v; want the folder and the file failed, read-only", res, err)
	}
}

// Off xfs nothing is counted or set.
func TestCowHintsElsewhere(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	must(t, unix.Statfs(dir, &fs))
	if uint32(fs.Type) == unix.XFS_SUPER_MAGIC {
		t.Skip("the temporary folder is on xfs")
	}
	writeFile(t, filepath.Join(dir, "big"), make([]byte, 2*minDelta), 0o600)
	if n, err := CountUnhinted(dir); err != nil || n != 0 {
		t.Errorf("CountUnhinted = %d, %v; want 0 off xfs", n, err)
	}
	if res, err := SetCowHints(dir); err != nil || res.Files+res.Dirs+res.Failed != 0 {
		t.Errorf("SetCowHints = %+v, %v; want nothing off xfs", res, err)
	}
}
