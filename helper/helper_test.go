package helper

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWipeKeepsDirAndDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("data"), 0o600))
	must(os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o600))
	must(os.Symlink(outside, filepath.Join(dir, "link")))
	if err := Wipe(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	must(err)
	if got := len(entries); got != 0 {
		t.Fatalf("got %d entries left, want 0", got)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Fatalf("file behind the symlink was touched: %v", err)
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"x", Arg}, 2},
		{[]string{"x", Arg, "nope"}, 1},
		{[]string{"x", Arg, "wipe"}, 1},
		{[]string{"x", Arg, "wipe", t.TempDir()}, 0},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if got := Main(tt.args, &buf); got != tt.want {
			t.Errorf("Main(%q) = %d, want %d (%s)", tt.args, got, tt.want, buf.String())
		}
	}
	if !Is([]string{"x", Arg}) || Is([]string{"x", "run"}) {
		t.Error("Is misdetects helper mode")
	}
}
