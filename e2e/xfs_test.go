package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
// staging copy beside it, while a database-like writer rewrites random
// pages of a 64 MiB file right up to the stop. The large file is not
// copied while the writer runs: it is cloned while it is stopped, and the
// clone is dropped once archived, so the staging copy costs (almost) no
// disk and the writer's pages are not copy-on-write between backups. Each
// archive holds exactly what the writer left at its stop, and a restore
// brings that back byte for byte.
func TestStagedXFSReflink(t *testing.T) {
	mnt := xfsMount(t)
	data := filepath.Join(mnt, "data")
	os.MkdirAll(data, 0o755)
	t.Cleanup(func() { os.RemoveAll(data + ".autobackup-staging") })
	p := NewProject(t)
	writeFile(t, filepath.Join(p.Dir, ".env"), "XFS_DATA_DIR="+data+"\n")
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "dd if=/dev/urandom of=/data/big.tmp bs=1M count=64 2>/dev/null && echo small > /data/small && sync && mv /data/big.tmp /data/big")
	before := xfsUsed(t, mnt)
	var id string
	for round := 1; round <= 2; round++ {
		r := p.Autobackup(t, "run")
		if r.Code != 0 {
			t.Fatalf("round %d: staged run on xfs: %v", round, r)
		}
		id = strings.TrimSpace(r.Stdout)
		wants := []string{"(reflinked)", "1 large file(s) (67.1 MB) left to clone while stopped", "as each was archived"}
		if round == 1 {
			wants = append(wants, "same file system")
		}
		for _, want := range wants {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("round %d: stderr lacks %q:\n%s", round, want, r.Stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(data+".autobackup-staging", "data", "small")); err != nil {
			t.Errorf("round %d: the staging copy lacks the small file: %v", round, err)
		}
		if _, err := os.Stat(filepath.Join(data+".autobackup-staging", "data", "big")); !os.IsNotExist(err) {
			t.Errorf("round %d: the clone of the large file is still in the staging copy after the run (err %v)", round, err)
		}
		if grew := xfsUsed(t, mnt) - before; grew > 32<<20 {
			t.Errorf("round %d: the xfs grew by %d MiB for a 64 MiB volume: the large file was copied, not cloned, or its clone kept", round, grew>>20)
		}
		files := archiveFiles(t, p, id, p.Volume("data"))
		sum := sha256.Sum256([]byte(files["big"]))
		if got, want := strings.Fields(files["sum-at-stop"]), hex.EncodeToString(sum[:]); len(got) == 0 || got[0] != want || len(files["big"]) != 64<<20 {
			t.Errorf("round %d: the archive's big file (%d bytes, sha256 %s) is not what the writer left at its stop (%v)", round, len(files["big"]), want, got)
		}
	}
	files := archiveFiles(t, p, id, p.Volume("data"))
	p.Compose(t, "exec", "-T", "db", "sh", "-c", "rm /data/small")
	if r := p.Autobackup(t, "restore", id, "--yes"); r.Code != 0 {
		t.Fatalf("restore: %v", r)
	}
	// The writer checks the restored file before it writes again: one
	// check after each backup, one after the restore.
	var logs string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		logs = p.Compose(t, "logs", "--no-log-prefix", "db")
		if strings.Count(logs, "verify: ") >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if n := strings.Count(logs, "verify: ok"); n != 3 || strings.Contains(logs, "MISMATCH") {
		t.Errorf("the writer's checks after two backups and a restore (want 3 \"verify: ok\"):\n%s", logs)
	}
	got := p.Compose(t, "exec", "-T", "db", "cat", "/data/sum-at-stop", "/data/small")
	if want := files["sum-at-stop"] + files["small"]; got != want {
		t.Errorf("after the restore: %q, want the backup's %q", got, want)
	}
}
