package atomicfile

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixedRandom makes the temporary names predictable: the n-th name drawn
// uses bytes all equal to n.
type fixedRandom struct{ n byte }

func (r *fixedRandom) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
	}
	r.n++
	return len(p), nil
}

func predictable(t *testing.T) {
	t.Helper()
	old := rand.Reader
	rand.Reader = &fixedRandom{}
	t.Cleanup(func() { rand.Reader = old })
}

// A symlink planted at the first temporary name (e.g. by another user in
// a shared directory) is neither followed nor replaced: the write goes to
// a fresh name and the symlink's target is untouched.
func TestWriteDoesNotFollowPlantedSymlink(t *testing.T) {
	predictable(t)
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, TempPrefix+"autobackup.toml-000000000000")
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "autobackup.toml")
	if err := WriteFile(dst, []byte("secret = 1\n"), 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("the symlink's target was written: %q", got)
	}
	if fi, err := os.Lstat(planted); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("planted symlink replaced or removed: %v %v", fi, err)
	}
	fi, err := os.Lstat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a regular file 0600", dst, fi.Mode())
	}
	if got, _ := os.ReadFile(dst); string(got) != "secret = 1\n" {
		t.Errorf("content %q", got)
	}
}

// When every candidate name is taken, CreateTemp fails rather than reuse
// one.
func TestCreateTempGivesUpOnCollisions(t *testing.T) {
	dir := t.TempDir()
	old := rand.Reader
	rand.Reader = bytes.NewReader(make([]byte, 6*20)) // always the same name
	t.Cleanup(func() { rand.Reader = old })
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(victim, filepath.Join(dir, TempPrefix+"f-000000000000")); err != nil {
		t.Fatal(err)
	}
	f, err := CreateTemp(dir, "f", 0o600)
	if err == nil {
		f.Close()
		t.Fatalf("CreateTemp succeeded on a taken name: %s", f.Name())
	}
	if !strings.Contains(err.Error(), "collisions") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Errorf("the dangling symlink's target was created: %v", err)
	}
}

// A symlink at the destination is replaced by the new file (rename), not
// written through.
func TestWriteReplacesSymlinkAtDestination(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "manifest.json")
	if err := os.Symlink(victim, dst); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("written through the symlink: %q", got)
	}
	if fi, _ := os.Lstat(dst); !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("destination %v, want a regular file 0600", fi.Mode())
	}
}
