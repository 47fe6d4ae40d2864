package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// makeBackup writes a committed local backup with one archive of random
// bytes (Upload and Download only move bytes; they do not decompress).
func makeBackup(t *testing.T, dir string, started time.Time) *archive.Manifest {
	t.Helper()
	id := archive.NewID(started)
	p, err := archive.Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(p.Path(), "data.tar.zst"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &archive.Manifest{ID: id, Project: "shop", Mode: archive.ModeStream, Started: started, Finished: started.Add(time.Second),
		Volumes: []archive.Volume{{Name: "shop_data", Key: "data", Driver: "local", DriverOpts: map[string]string{"password": "hunter2"},
			Archive: "data.tar.zst", ArchiveBytes: int64(len(data)), TarBytes: 1, SHA256: sha(data)}}}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sha(b []byte) string {
	h := sha256.New()
	h.Write(b)
	return hexSum(h)
}

func TestUploadListDownload(t *testing.T) {
	ctx := context.Background()
	id, _ := age.GenerateX25519Identity()
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "age"}[encrypted], func(t *testing.T) {
			dir := t.TempDir()
			mem := NewMemory()
			tg := &Target{Store: mem, Folder: Folder("shop", ""), Host: "h1"}
			if encrypted {
				tg.Recipients = []age.Recipient{id.Recipient()}
			}
			old := makeBackup(t, dir, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			m := makeBackup(t, dir, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
			for _, mm := range []*archive.Manifest{old, m} {
				if _, err := tg.Upload(ctx, filepath.Join(dir, mm.ID), mm); err != nil {
					t.Fatal(err)
				}
			}
			ls, err := tg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(ls), 2; got != want {
				t.Fatalf("listed %d, want %d", got, want)
			}
			if got, want := ls[0].ID, m.ID; got != want {
				t.Errorf("newest: got %s, want %s", got, want)
			}
			if got := ls[0].Index.Encrypted; got != encrypted {
				t.Errorf("index encrypted = %v, want %v", got, encrypted)
			}
			// Driver options never leave the host in plaintext when encrypted.
			for _, o := range mustList(t, mem, "") {
				rc, _ := mem.Get(ctx, o.Key)
				var b bytes.Buffer
				_, _ = b.ReadFrom(rc)
				if encrypted && strings.Contains(b.String(), "hunter2") {
					t.Errorf("%s holds a driver option in plaintext", o.Key)
				}
			}

			var ids []age.Identity
			if encrypted {
				if _, indexOnly, err := tg.Verify(ctx, m.ID, nil); err != nil || !indexOnly {
					t.Fatalf("verify without identity: index only %v, %v; want a check against the index", indexOnly, err)
				}
				if _, _, err := tg.Download(ctx, m.ID, t.TempDir(), nil); !errors.Is(err, ErrNoIdentity) {
					t.Errorf("download without identity: got %v, want ErrNoIdentity", err)
				}
				other, _ := age.GenerateX25519Identity()
				if _, _, err := tg.Download(ctx, m.ID, t.TempDir(), []age.Identity{other}); err == nil || !strings.Contains(err.Error(), "no identity matches") {
					t.Errorf("download with a wrong identity: got %v", err)
				}
				ids = []age.Identity{id}
			}
			fresh := t.TempDir()
			got, path, err := tg.Download(ctx, m.ID, fresh, ids)
			if err != nil {
				t.Fatal(err)
			}
			if got.Volumes[0].SHA256 != m.Volumes[0].SHA256 {
				t.Errorf("downloaded manifest differs")
			}
			if cs := archive.Verify(ctx, path, got, archive.SafetyOptions{}); cs[0].Err != nil && !strings.Contains(cs[0].Err.Error(), "zstd") && !strings.Contains(cs[0].Err.Error(), "magic") {
				// The archive is random bytes, so decompression fails; the
				// checksum part of Verify must still pass.
				if strings.Contains(cs[0].Err.Error(), "checksum mismatch") {
					t.Errorf("downloaded archive: %v", cs[0].Err)
				}
			}
			checks, _, err := tg.Verify(ctx, m.ID, ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if c.Err != nil {
					t.Errorf("verify %s: %v", c.Object, c.Err)
				}
			}
			key := tg.key(m.ID, checks[0].Object)
			mem.Corrupt(key, 5000)
			checks, _, _ = tg.Verify(ctx, m.ID, ids)
			if checks[0].Err == nil {
				t.Errorf("verify after corrupting %s: no error", key)
			}
			if _, _, err := tg.Download(ctx, m.ID, t.TempDir(), ids); err == nil {
				t.Error("download of a corrupted object: no error")
			}
		})
	}
}

func mustList(t *testing.T, s Store, prefix string) []Object {
	t.Helper()
	objs, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestDeleteLockedAndFleet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mem := NewMemory()
	a := &Target{Store: mem, Folder: Folder("shop", "")}
	b := &Target{Store: mem, Folder: Folder("shop", "host2")}
	m1 := makeBackup(t, dir, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m2 := makeBackup(t, dir, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		tg *Target
		m  *archive.Manifest
	}{{a, m1}, {a, m2}, {b, m2}} {
		if _, err := tt.tg.Upload(ctx, filepath.Join(dir, tt.m.ID), tt.m); err != nil {
			t.Fatal(err)
		}
	}
	all, err := ListAll(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range all {
		got = append(got, l.Folder+"/"+l.ID)
	}
	want := []string{"shop/" + m2.ID, "shop@host2/" + m2.ID, "shop/" + m1.ID}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("fleet: got %v, want %v", got, want)
	}

	mem.Locked[a.key(m1.ID, "data.tar.zst")] = true
	locked, err := a.Delete(ctx, m1.ID)
	if err != nil || len(locked) != 1 {
		t.Fatalf("delete locked: got %v, %v; want one locked object", locked, err)
	}
	if ok, _ := a.Has(ctx, m1.ID); !ok {
		t.Error("a backup with locked objects lost its index")
	}
	delete(mem.Locked, a.key(m1.ID, "data.tar.zst"))
	if locked, err := a.Delete(ctx, m1.ID); err != nil || len(locked) != 0 {
		t.Fatalf("delete: %v, %v", locked, err)
	}
	if objs := mustList(t, mem, a.Folder+"/"+m1.ID+"/"); len(objs) != 0 {
		t.Errorf("left after delete: %v", objs)
	}
}

func TestUploadFailureLeavesNoIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mem := NewMemory()
	mem.PutErr = func(key string) error {
		if strings.HasSuffix(key, ".tar.zst.age") {
			return errors.New("connection reset")
		}
		return nil
	}
	id, _ := age.GenerateX25519Identity()
	tg := &Target{Store: mem, Folder: "shop", Recipients: []age.Recipient{id.Recipient()}}
	m := makeBackup(t, dir, time.Now())
	if _, err := tg.Upload(ctx, filepath.Join(dir, m.ID), m); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("upload: got %v", err)
	}
	if ok, _ := tg.Has(ctx, m.ID); ok {
		t.Error("a failed upload has an index")
	}
}

// TestTransferProgress: upload, download and verify each report their
// phase and every archive from start to done with all its bytes, so the
// plugin can draw a progress line per volume.
func TestTransferProgress(t *testing.T) {
	ctx := context.Background()
	id, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	var got []string
	tg := &Target{Store: NewMemory(), Folder: Folder("shop", ""), Recipients: []age.Recipient{id.Recipient()},
		Reporter: progress.Func(func(e progress.Event) {
			switch e.Kind {
			case progress.Phase:
				got = append(got, e.Message)
			case progress.VolumeStart, progress.VolumeDone:
				got = append(got, fmt.Sprintf("%s %s %d/%d", e.Kind, e.Volume, e.Bytes, e.Total))
			}
		})}
	m := makeBackup(t, dir, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	if _, err := tg.Upload(ctx, filepath.Join(dir, m.ID), m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Download(ctx, m.ID, t.TempDir(), []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Verify(ctx, m.ID, []age.Identity{id}); err != nil {
		t.Fatal(err)
	}
	n := m.Volumes[0].ArchiveBytes
	var want []string
	for _, phase := range []string{"upload", "download", "verify"} {
		want = append(want, phase, fmt.Sprintf("volume-start shop_data 0/%d", n), fmt.Sprintf("volume-done shop_data %d/%d", n, n))
	}
	// verify reads the manifest's object too, after the archive's.
	idx, err := tg.Index(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	mo := idx.Objects[len(idx.Objects)-1]
	want = append(want, fmt.Sprintf("volume-start %s 0/%d", mo.Name, mo.Size), fmt.Sprintf("volume-done %s %d/%d", mo.Name, mo.Size, mo.Size))
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
