package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// xfsMount makes a reflink-capable xfs file system on a loop device and
// returns its mount point; t.Cleanup unmounts it.
func xfsMount(t *testing.T) string {
	t.Helper()
	need := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("xfs test: %s (CI=true: it must run; .ci/run installs xfsprogs)", why)
		}
		t.Skip("xfs test: " + why)
	}
	if os.Getuid() != 0 {
		need("needs root to mount a loop device")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		need("mkfs.xfs missing (apt-get install xfsprogs)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "xfs.img"), filepath.Join(dir, "mnt")
	os.MkdirAll(mnt, 0o755)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30)
	f.Close()
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		need("mount -o loop failed: " + strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		ctx := context.Background()
		runCmd(ctx, "", nil, "umount", "-l", mnt)
	})
	return mnt
}

func xfsUsed(t *testing.T, mnt string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestStagedXFSReflink: a volume on xfs is backed up staged with its
// staging copy beside it, the copy costs (almost) no disk because it is a
// reflink, and a restore brings the data back byte for byte.
func TestStagedXFSReflink(t *testing.T) {
	mnt := xfsMount(t)
	data := filepath.Join(mnt, "data")
	os.MkdirAll(data, 0o755)
	p := NewProject(t)
	writeFile(t, filepath.Join(p.Dir, ".env"), "XFS_DATA_DIR="+data+"\n")
	p.Compose(t, "up", "-d", "--wait")
	// 256 MiB a database might hold, plus a file rewritten page by page.
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big bs=1M count=256 2>/dev/null && dd if=/dev/urandom of=/data/pages bs=1M count=8 2>/dev/null && sync")
	before := xfsUsed(t, mnt)
	r := p.Autobackup(t, "run")
	if r.Code != 0 {
		t.Fatalf("staged run on xfs: %v", r)
	}
	if !strings.Contains(r.Stderr, "same file system") {
		t.Errorf("the staging copy was not placed beside the volume:\n%s", r.Stderr)
	}
	if grew := xfsUsed(t, mnt) - before; grew > 64<<20 {
		t.Errorf("the staging copy of 264 MiB took %d MiB of the xfs: not a reflink", grew>>20)
	}
	if _, err := os.Stat(data + ".autobackup-staging"); err != nil {
		t.Errorf("no staging folder beside the volume: %v", err)
	}
	// A database-like writer rewrites pages of a file, then a second run.
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "for i in 1 2 3; do dd if=/dev/urandom of=/data/pages bs=8k count=1 seek=$((i*97)) conv=notrunc 2>/dev/null; done")
	want := strings.Fields(p.Compose(t, "exec", "-T", "db", "sha256sum", "/data/big", "/data/pages"))
	r = p.Autobackup(t, "run")
	if r.Code != 0 {
		t.Fatalf("second staged run: %v", r)
	}
	id := strings.TrimSpace(r.Stdout)
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "rm /data/big; echo x > /data/pages")
	if r := p.Autobackup(t, "restore", id, "--yes"); r.Code != 0 {
		t.Fatalf("restore: %v", r)
	}
	got := strings.Fields(p.Compose(t, "exec", "-T", "db", "sha256sum", "/data/big", "/data/pages"))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after restore: %v, want %v", got, want)
	}
	t.Cleanup(func() { os.RemoveAll(data + ".autobackup-staging") })
}
