package helper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
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
		{[]string{"x", protocol.Arg}, 2},
		{[]string{"x", protocol.Arg, "nope"}, 1},
		{[]string{"x", protocol.Arg, "wipe"}, 1},
		{[]string{"x", protocol.Arg, "wipe", t.TempDir()}, 0},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if got := Main(tt.args, &buf); got != tt.want {
			t.Errorf("Main(%q) = %d, want %d (%s)", tt.args, got, tt.want, buf.String())
		}
	}
	if !Is([]string{"x", protocol.Arg}) || Is([]string{"x", "run"}) {
		t.Error("Is misdetects helper mode")
	}
}

// A sync asked for progress reports it while it runs, files and bytes
// growing, and never after it returned; the command prints progress lines
// and then its result.
func TestSyncProgress(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const n, size = 40, 4096
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), bytes.Repeat([]byte{byte(i)}, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var seen []protocol.Progress
	returned := false
	opts := SyncOptions{
		ProgressEvery: time.Millisecond,
		Progress: func(p protocol.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if returned {
				t.Error("progress after Sync returned")
			}
			seen = append(seen, p)
		},
		afterCopy: func(string) { time.Sleep(5 * time.Millisecond) },
	}
	st, err := Sync(src, dst, opts)
	mu.Lock()
	returned = true
	mu.Unlock()
	if err != nil || st.Copied != n {
		t.Fatalf("Sync = %+v, %v", st, err)
	}
	if len(seen) < 2 {
		t.Fatalf("%d progress reports during a sync of %d files that takes ~%d ms", len(seen), n, n*5/4)
	}
	for i, p := range seen {
		if p.Files > n || p.Bytes < p.Files*size || p.Bytes > n*size || i > 0 && (p.Files < seen[i-1].Files || p.Bytes < seen[i-1].Bytes) {
			t.Errorf("progress %d: %+v (before: %+v)", i, p, seen[max(i-1, 0)])
		}
	}
	if last := seen[len(seen)-1]; last.Files == 0 {
		t.Errorf("no file done in the last report %+v", last)
	}

	// The command line: progress lines, then one result line.
	var out bytes.Buffer
	if err := run(protocol.Argv(&protocol.Sync{Progress: time.Millisecond, Src: src, Dst: t.TempDir()})[2:], &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res protocol.SyncStats
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Copied != n {
		t.Fatalf("last line %q: %+v, %v; want the result", lines[len(lines)-1], res, err)
	}
	s := protocol.NewStream(nil)
	s.Write(out.Bytes())
	res = protocol.SyncStats{}
	if err := s.Result(&res); err != nil || res.Copied != n {
		t.Errorf("streamed result %+v, %v", res, err)
	}
}

// A file being copied counts in the progress with what is written of it,
// and the count never goes back when it moves from being copied to done.
func TestSyncProgressWithinAFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &syncer{opts: SyncOptions{Progress: func(protocol.Progress) {}}}
	s.done(100)
	fd := int(f.Fd())
	s.track(fd, true)
	if _, err := f.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if got := s.progress(); got != (protocol.Progress{Files: 1, Bytes: 1100}) {
		t.Errorf("progress with a file under way = %+v, want 1 file, 1100 bytes", got)
	}
	s.track(fd, false) // done, but not yet counted as such
	if got := s.progress(); got.Bytes != 1100 {
		t.Errorf("progress between copied and done = %+v, want it to stay at 1100 bytes", got)
	}
	s.done(1000)
	if got := s.progress(); got != (protocol.Progress{Files: 2, Bytes: 1100}) {
		t.Errorf("progress once done = %+v, want 2 files, 1100 bytes", got)
	}
}
