package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// populate writes every kind of entry restore must preserve into /data.
const populate = `set -e
cd /data
mkdir -p 'dir with space/empty dir' 'ünïcödé ✓'
printf 'x' > 'dir with space/f'
: > empty
printf 'nl' > "$(printf 'new\nline')"
echo setuid > setuid; chmod 4755 setuid
echo setgid > setgid; chmod 2750 setgid
mkdir sticky; chmod 1777 sticky
echo own > owned; chown 999:999 owned
echo pg > pgdata; chown 70:70 pgdata; chmod 600 pgdata
ln -s owned rel-link
ln -s /etc/passwd abs-link
ln -s does/not/exist dangling
echo hl > hard1; ln hard1 hard2
echo old > old; touch -d '2020-01-02 03:04:05' old
touch -d '2019-05-06 07:08:09' 'dir with space'
dd if=/dev/urandom of=big bs=1M count=210 2>/dev/null
chown 999:999 /data
`

// snapshot describes /data: type, mode, owner, size, mtime and link target
// of every entry (sorted), checksums of every file, and the hard link.
const snapshot = `cd /data
find . -print0 | sort -z | xargs -0 stat -c '%n|%F|%a|%u:%g|%s|%Y|%N'
echo ---
find . -type f -print0 | sort -z | xargs -0 md5sum
echo ---
if [ -e hard1 ] && [ hard1 -ef hard2 ]; then echo hardlinked; fi
`

func volumeSnapshot(t *testing.T, p *Project, service string) string {
	t.Helper()
	return p.Compose(t, "exec", "-T", service, "sh", "-c", snapshot)
}

// useDirect switches the direct path (helpers that read and write the
// backup folder themselves) on, as by default, or off
// (DOCKER_AUTOBACKUP_DIRECT=0: all data through the engine's API).
func useDirect(t *testing.T, on bool) {
	t.Helper()
	if on {
		t.Setenv("DOCKER_AUTOBACKUP_DIRECT", "")
	} else {
		t.Setenv("DOCKER_AUTOBACKUP_DIRECT", "0")
	}
}

// copiedVia checks that the "copied" lines of a run (the "restored" lines
// of a restore) name how the data moved.
func copiedVia(t *testing.T, stderr string, direct bool) {
	t.Helper()
	want, other := "through the engine's API", "next to the data"
	if direct {
		want, other = other, want
	}
	if !strings.Contains(stderr, want) || strings.Contains(stderr, other) {
		t.Errorf("want the data moved %s:\n%s", want, stderr)
	}
}

// TestRestoreFidelity backs up, damages and restores every kind of entry,
// once with the direct path (a stream backup packed by a helper next to the
// data, restored by a helper) and once through the engine's API (a staged
// backup). The second restore, after `down -v`, takes the other path, so
// each path restores archives written by the other.
func TestRestoreFidelity(t *testing.T) {
	t.Run("direct", func(t *testing.T) { restoreFidelity(t, true) })
	t.Run("api", func(t *testing.T) { restoreFidelity(t, false) })
}

func restoreFidelity(t *testing.T, direct bool) {
	p := NewProject(t)
	useDirect(t, direct)
	if direct {
		if err := os.WriteFile(filepath.Join(p.Dir, "autobackup.toml"), []byte("[settings]\nsnapshot = \"stream\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "store", "sh", "-c", populate)
	before := volumeSnapshot(t, p, "store")
	if !strings.Contains(before, "hardlinked") || !strings.Contains(before, "setuid") {
		t.Fatalf("fixture not populated:\n%s", before)
	}
	br := p.Autobackup(t, "run", "--tag", "pre-upgrade")
	if br.Code != 0 {
		t.Fatalf("run: %v", br)
	}
	id := strings.TrimSpace(br.Stdout)
	copiedVia(t, br.Stderr, direct)

	// Damage the data the way a bad upgrade would: change, delete, add.
	p.Compose(t, "exec", "-T", "store", "sh", "-c", "cd /data && echo broken > owned && rm -rf sticky big && mkdir stale && echo x > stale/file && chmod 700 /data")

	// Without a terminal and without --yes, restore refuses (exit 2).
	if r := p.Autobackup(t, "restore", id); r.Code != 2 {
		t.Fatalf("restore without --yes and without a TTY: exit %d, want 2: %v", r.Code, r)
	}
	ev := p.StartEvents(t)
	r := p.Autobackup(t, "restore", id, "--yes")
	if r.Code != 0 {
		t.Fatalf("restore: %v", r)
	}
	copiedVia(t, r.Stderr, direct)
	evs := ev.Stop()
	if !Before(evs, "reader", "stop", "store", "stop") || !Before(evs, "store", "start", "reader", "start") {
		t.Errorf("restore did not stop/start in dependency order: %v", Lifecycle(evs))
	}
	if !strings.Contains(r.Stderr, "autobackup-test/busybox:latest") {
		t.Errorf("restore summary does not show the images the data belongs to:\n%s", r.Stderr)
	}
	wantAllUp(t, p, "store", "reader")
	if after := volumeSnapshot(t, p, "store"); after != before {
		t.Errorf("restored volume differs from the backup\n--- before:\n%s\n--- after:\n%s", before, after)
	}
	s := readState(t, p)
	if len(s.Restores) != 1 || s.Restores[0].BackupID != id || s.Restores[0].Status != "success" {
		t.Errorf("[[restores]] = %+v", s.Restores)
	}

	// After `docker compose down -v` the volume is gone: restore creates it
	// again as compose made it, so compose adopts it without complaint.
	p.Compose(t, "down", "-v")
	useDirect(t, !direct)
	r = p.Autobackup(t, "restore", "latest", "--yes")
	if r.Code != 0 {
		t.Fatalf("restore into a removed volume: %v", r)
	}
	copiedVia(t, r.Stderr, !direct)
	lbl := Docker(t, "volume", "inspect", "--format", `{{index .Labels "com.docker.compose.project"}} {{index .Labels "com.docker.compose.volume"}} {{index .Labels "com.example.owner"}}`, p.Volume("data"))
	if got, want := strings.TrimSpace(lbl.Stdout), p.Name+" data e2e"; got != want {
		t.Errorf("re-created volume labels %q, want %q", got, want)
	}
	up := run(t, p.Dir, "docker", "compose", "-p", p.Name, "up", "-d", "--wait")
	if up.Code != 0 || strings.Contains(up.Stderr, "already exists but was not created") {
		t.Fatalf("compose up after restore: %v", up)
	}
	if after := volumeSnapshot(t, p, "store"); after != before {
		t.Errorf("volume restored after down -v differs\n--- before:\n%s\n--- after:\n%s", before, after)
	}
}

// hostileBackup writes a backup directory whose single archive holds the
// given tar entries, with a manifest whose checksums are right (or lie).
func hostileBackup(t *testing.T, p *Project, id string, entries []tar.Header, lie bool) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len("evil"))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("evil"))
		}
	}
	tw.Close()
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z)
	enc.Write(raw.Bytes())
	enc.Close()
	sum := sha256.Sum256(z.Bytes())
	hexsum := hex.EncodeToString(sum[:])
	if lie {
		hexsum = strings.Repeat("0", 64)
	}
	dir := filepath.Join(p.Dir, "backups", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	name := p.Volume("data") + ".tar.zst"
	if err := os.WriteFile(filepath.Join(dir, name), z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	m := archive.Manifest{
		FormatVersion: archive.FormatVersion, ID: id, Project: p.Name, ProjectDir: p.Dir, Mode: archive.ModeStream,
		Started: now, Finished: now, ToolVersion: "0.1.0",
		Volumes: []archive.Volume{{Name: p.Volume("data"), Key: "data", Driver: "local", Archive: name,
			ArchiveBytes: int64(z.Len()), TarBytes: int64(raw.Len()), SHA256: hexsum}},
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), js, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreRefusesHostile(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	p.Compose(t, "exec", "-T", "store", "sh", "-c", "echo precious > /data/keep")
	before := volumeSnapshot(t, p, "store")
	dir := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	file := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeReg} }
	cases := []struct {
		name    string
		entries []tar.Header
		lie     bool
		reason  string
	}{
		{"dotdot", []tar.Header{dir("./"), file("./../../escape")}, false, "escape"},
		{"absolute", []tar.Header{dir("./"), file("/etc/evil")}, false, "absolute"},
		{"through-symlink", []tar.Header{dir("./"), {Name: "./ln", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, file("./ln/evil")}, false, "symlink"},
		{"hardlink-outside", []tar.Header{dir("./"), {Name: "./hl", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, false, "link"},
		{"device", []tar.Header{dir("./"), {Name: "./dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, false, "device"},
		{"lying-checksum", []tar.Header{dir("./"), file("./harmless")}, true, "checksum"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := time.Now().UTC().Add(time.Duration(i+1)*time.Hour).Format("20060102-150405") + "-bad" + string(rune('0'+i))
			hostileBackup(t, p, id, c.entries, c.lie)
			ev := p.StartEvents(t)
			r := p.Autobackup(t, "restore", id, "--yes")
			evs := ev.Stop()
			if r.Code == 0 {
				t.Fatalf("hostile restore succeeded: %v", r)
			}
			if !strings.Contains(strings.ToLower(r.Stderr), c.reason) {
				t.Errorf("error does not say %q: %s", c.reason, r.Stderr)
			}
			if got := Lifecycle(evs); len(got) != 0 {
				t.Errorf("containers were touched before the refusal: %v", got)
			}
			if v := p.Autobackup(t, "verify", id); v.Code != 1 {
				t.Errorf("verify of the hostile backup: exit %d, want 1: %v", v.Code, v)
			}
			os.RemoveAll(filepath.Join(p.Dir, "backups", id))
		})
	}
	if after := volumeSnapshot(t, p, "store"); after != before {
		t.Errorf("volume changed by refused restores\n%s\n---\n%s", before, after)
	}
}

func TestListVerify(t *testing.T) {
	p := NewProject(t)
	p.Compose(t, "up", "-d", "--wait")
	first := mustRun(t, p, "--tag", "one")
	second := mustRun(t, p)
	if first == second {
		t.Fatalf("two runs gave the same ID %s", first)
	}
	var list []struct {
		ID, Status, Tag string
		Volumes         []string
	}
	r := p.Autobackup(t, "list", "--format", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || r.Code != 0 {
		t.Fatalf("list json: %v %v", err, r)
	}
	if len(list) != 2 || list[0].ID != second || list[1].ID != first || list[1].Tag != "one" || list[0].Status != "success" {
		t.Fatalf("list = %+v, want newest first", list)
	}
	if v := p.Autobackup(t, "verify", "--all"); v.Code != 0 || strings.Count(v.Stdout, "OK") != 2 {
		t.Fatalf("verify --all: %v", v)
	}

	// Corrupt one byte of the newest archive: verify names it, exit 1, and
	// restore refuses it before stopping anything.
	arch := filepath.Join(p.Dir, "backups", second, p.Volume("data")+".tar.zst")
	b, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(arch, b, 0o600); err != nil {
		t.Fatal(err)
	}
	v := p.Autobackup(t, "verify")
	if v.Code != 1 || !strings.Contains(v.Stdout, "CORRUPT") || !strings.Contains(v.Stdout, filepath.Base(arch)) {
		t.Fatalf("verify of a corrupt archive: %v", v)
	}
	if r := p.Autobackup(t, "restore", second, "--yes"); r.Code == 0 {
		t.Fatalf("restore of a corrupt backup succeeded")
	}
	if r := p.Autobackup(t, "restore", "no-such-id", "--yes"); r.Code != 2 {
		t.Errorf("restore of an unknown ID: exit %d, want 2: %v", r.Code, r)
	}
	if r := p.Autobackup(t, "restore", first, "--volume", "nope", "--yes"); r.Code != 2 || !strings.Contains(r.Stderr, p.Volume("data")) {
		t.Errorf("restore of an unknown volume: exit %d, want 2 and the list of volumes: %v", r.Code, r)
	}

	// Moved to a new host without autobackup.toml and its history: list still works from
	// the manifests. A recorded backup whose files are gone shows missing.
	os.RemoveAll(filepath.Join(p.Dir, "backups", first))
	r = p.Autobackup(t, "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, first) || !strings.Contains(r.Stdout, "missing") {
		t.Errorf("list with a deleted backup: %v", r)
	}
	os.Remove(filepath.Join(p.Dir, "autobackup.toml"))
	os.Remove(filepath.Join(p.Dir, "autobackup.history.toml"))
	r = p.Autobackup(t, "list", "--format", "json")
	list = nil
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list) != 1 || list[0].ID != second {
		t.Errorf("list without autobackup.toml = %+v (%v)", list, err)
	}
}
