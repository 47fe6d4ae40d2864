package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 23, 15, 0, 0, time.UTC)

func TestNewID(t *testing.T) {
	id := NewID(time.Date(2026, 11, 26, 0, 15, 0, 0, time.FixedZone("CET", 3600)))
	if got, want := id[:16], "20261125-231500-"; got != want {
		t.Errorf("NewID prefix = %q, want %q", got, want)
	}
	if !ValidID(id) {
		t.Errorf("ValidID(%q) = false", id)
	}
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"20261125-231500-a1b2", true},
		{"20261125-231500-A1B2", false},
		{"20261125-231500-a1b", false},
		{"20261325-231500-a1b2", false},
		{"20261125-231500-a1b2/..", false},
		{"../20261125-231500", false},
		{"latest", false},
		{"", false},
		{"+0261125-231500-a1b2", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestWriteVolumeRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	data := sampleTar(t)
	id := NewID(t0)
	p, err := Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()

	var calls []int64
	v := Volume{Name: "shop_dbdata", Key: "dbdata"}
	if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(data), 0, func(n int64) { calls = append(calls, n) }); err != nil {
		t.Fatal(err)
	}
	if got, want := v.Archive, "shop_dbdata.tar.zst"; got != want {
		t.Errorf("Archive = %q, want %q", got, want)
	}
	if got, want := v.TarBytes, int64(len(data)); got != want {
		t.Errorf("TarBytes = %d, want %d", got, want)
	}
	if len(calls) == 0 || calls[len(calls)-1] != int64(len(data)) {
		t.Errorf("progress calls = %v, want last %d", calls, len(data))
	}
	raw, err := os.ReadFile(filepath.Join(p.Path(), v.Archive))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got, want := v.SHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("SHA256 = %s, want %s", got, want)
	}
	if got, want := v.ArchiveBytes, int64(len(raw)); got != want {
		t.Errorf("ArchiveBytes = %d, want %d", got, want)
	}

	// A second volume with the same file stem gets another file.
	v2 := Volume{Name: "shop dbdata"}
	if err := p.WriteVolume(t.Context(), &v2, bytes.NewReader(data), 19, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := v2.Archive, "shop_dbdata-2.tar.zst"; got != want {
		t.Errorf("second Archive = %q, want %q", got, want)
	}

	m := &Manifest{Project: "shop", Mode: ModeStaged, Started: t0, Volumes: []Volume{v, v2}}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, id)
	for _, vol := range m.Volumes {
		rc, err := OpenVolume(path, vol)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: decompressed %d bytes differ from the %d written", vol.Name, len(got), len(data))
		}
	}

	// Modes: secrets are readable by the owner only.
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o700},
		{filepath.Join(path, ManifestName), 0o600},
		{filepath.Join(path, v.Archive), 0o600},
		{filepath.Join(path, v2.Archive), 0o600},
	} {
		if got := mode(t, tc.path); got != tc.want {
			t.Errorf("mode of %s = %o, want %o", tc.path, got, tc.want)
		}
	}
	if got, want := dirNames(t, dir), []string{id}; !slices.Equal(got, want) {
		t.Errorf("backup dir holds %q, want %q", got, want)
	}
}

func TestBeginKeepsExistingDirMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := Begin(dir, NewID(t0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if got, want := mode(t, dir), os.FileMode(0o755); got != want {
		t.Errorf("mode of existing dir = %o, want %o", got, want)
	}
	if got, want := mode(t, p.Path()), os.FileMode(0o700); got != want {
		t.Errorf("mode of partial dir = %o, want %o", got, want)
	}
	if _, err := Begin(dir, "../escape", "shop"); err == nil {
		t.Error("Begin with an invalid id succeeded")
	}
}

func TestCommitOnlyAfterSuccess(t *testing.T) {
	dir := t.TempDir()
	id := NewID(t0)
	p, err := Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	v := Volume{Name: "shop_data"}
	if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(sampleTar(t)), 1, nil); err != nil {
		t.Fatal(err)
	}
	if exists(t, filepath.Join(dir, id)) {
		t.Fatal("backup visible before Commit")
	}

	// A manifest that is invalid or lies about the archive is refused and
	// leaves the backup pending.
	bad := []*Manifest{
		{Project: "shop", Mode: "fast", Volumes: []Volume{v}},
		{Project: "shop", Mode: ModeStream, Volumes: []Volume{{Name: "x", Archive: "missing.tar.zst", SHA256: v.SHA256}}},
		{Project: "shop", Mode: ModeStream, ID: NewID(t0.Add(time.Hour)), Volumes: []Volume{v}},
	}
	short := v
	short.ArchiveBytes++
	bad = append(bad, &Manifest{Project: "shop", Mode: ModeStream, Volumes: []Volume{short}})
	for i, m := range bad {
		if err := p.Commit(m); err == nil {
			t.Errorf("bad manifest %d: Commit succeeded", i)
		}
		if exists(t, filepath.Join(dir, id)) {
			t.Fatalf("bad manifest %d: backup visible after failed Commit", i)
		}
	}

	if err := p.Commit(&Manifest{Project: "shop", Mode: ModeStream, Volumes: []Volume{v}}); err != nil {
		t.Fatal(err)
	}
	if got, want := dirNames(t, dir), []string{id}; !slices.Equal(got, want) {
		t.Errorf("after Commit dir holds %q, want %q", got, want)
	}
	if err := p.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if !exists(t, filepath.Join(dir, id, ManifestName)) {
		t.Error("Abort after Commit removed the backup")
	}
	if err := p.Commit(&Manifest{Project: "shop", Mode: ModeStream}); err == nil {
		t.Error("second Commit succeeded")
	}
	if _, err := Begin(dir, id, "shop"); err == nil {
		t.Error("Begin with the id of a complete backup succeeded")
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	id := NewID(t0)
	p, err := Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	v := Volume{Name: "shop_data"}
	if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(sampleTar(t)), 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Abort(); err != nil {
			t.Fatalf("Abort %d: %v", i, err)
		}
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("after Abort dir holds %q, want nothing", got)
	}
	if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(nil), 1, nil); err == nil {
		t.Error("WriteVolume after Abort succeeded")
	}
	if err := p.Commit(&Manifest{Project: "shop", Mode: ModeStream}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

// endless is a tar stream that never ends; it cancels ctx after a while.
type endless struct {
	n      int
	cancel func()
}

func (e *endless) Read(p []byte) (int, error) {
	e.n++
	if e.n == 20 {
		e.cancel()
	}
	clear(p)
	return len(p), nil
}

func TestWriteVolumeCancel(t *testing.T) {
	dir := t.TempDir()
	id := NewID(t0)
	p, err := Begin(dir, id, "shop")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	v := Volume{Name: "shop_data"}
	err = p.WriteVolume(ctx, &v, &endless{cancel: cancel}, 1, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteVolume error = %v, want context.Canceled", err)
	}
	if v.Archive != "" || v.SHA256 != "" {
		t.Errorf("volume filled after failure: %+v", v)
	}
	if got := dirNames(t, p.Path()); len(got) != 0 {
		t.Errorf("partial dir holds %q after cancel, want nothing", got)
	}
	// The same name can be used again after a failure.
	if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(sampleTar(t)), 1, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := v.Archive, "shop_data.tar.zst"; got != want {
		t.Errorf("Archive after retry = %q, want %q", got, want)
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if exists(t, filepath.Join(dir, id)) || exists(t, p.Path()) {
		t.Error("cancelled backup left a directory")
	}
}

func TestWriteVolumeBadLevel(t *testing.T) {
	p, err := Begin(t.TempDir(), NewID(t0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	for _, level := range []int{-1, 23} {
		v := Volume{Name: "x1"}
		if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(nil), level, nil); err == nil {
			t.Errorf("level %d accepted", level)
		}
	}
}

func TestArchiveFileBase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"shop_dbdata", "shop_dbdata"},
		{"a.b-c", "a.b-c"},
		{"../../etc", "_._.__etc"},
		{".hidden", "_hidden"},
		{"a..b", "a._b"},
		{"trailing.", "trailing"},
		{"", "volume"},
		{"ünï/côde", "__n___c__de"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200)},
	} {
		got := ArchiveFileBase(tc.in)
		if got != tc.want {
			t.Errorf("ArchiveFileBase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := checkArchiveName(got + ArchiveExt); err != nil {
			t.Errorf("ArchiveFileBase(%q) = %q: %v", tc.in, got, err)
		}
	}
}

func TestListAndOpen(t *testing.T) {
	dir := t.TempDir()
	if entries, err := List(filepath.Join(dir, "missing"), "shop"); err != nil || len(entries) != 0 {
		t.Errorf("List(missing) = %v, %v; want empty, nil", entries, err)
	}
	if _, _, err := Open(dir, "shop", Latest); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(latest) in empty dir: %v, want ErrNotFound", err)
	}

	data := map[string][]byte{"shop_data": sampleTar(t)}
	// The IDs' times disagree with Started on purpose: Started wins.
	older := "20261125-100000-aaaa"
	newer := "20261125-090000-bbbb"
	writeBackup(t, dir, older, t0, data)
	writeBackup(t, dir, newer, t0.Add(time.Hour), data)

	// A backup whose manifest is broken sorts by its ID.
	broken := "20261126-060000-cccc"
	if err := os.Mkdir(filepath.Join(dir, broken), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, broken, ManifestName), []byte(`{"format_version": 1, "project": "shop", "surprise": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not backups: a partial one, a stray file, a dir with another name.
	for _, name := range []string{".partial-20261127-000000-dddd", "notes", "20261125"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	entries, err := List(dir, "shop")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.ID)
	}
	if want := []string{broken, newer, older}; !slices.Equal(got, want) {
		t.Fatalf("List order = %q, want %q", got, want)
	}
	if entries[0].Err == nil || entries[0].Manifest != nil {
		t.Errorf("broken entry: Manifest %v, Err %v; want nil and an error", entries[0].Manifest, entries[0].Err)
	}
	if !strings.Contains(entries[0].Err.Error(), "surprise") {
		t.Errorf("broken entry error %q does not name the unknown field", entries[0].Err)
	}
	for _, e := range entries[1:] {
		if e.Err != nil || e.Manifest == nil || e.Manifest.ID != e.ID || e.Path != filepath.Join(dir, e.ID) {
			t.Errorf("entry %s: %+v", e.ID, e)
		}
	}

	// latest is the newest, even when broken: no silent fallback.
	if _, _, err := Open(dir, "shop", Latest); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Open(latest) with broken newest: %v, want a manifest error", err)
	}
	if err := os.RemoveAll(filepath.Join(dir, broken)); err != nil {
		t.Fatal(err)
	}
	m, path, err := Open(dir, "shop", Latest)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.ID, newer; got != want {
		t.Errorf("Open(latest).ID = %s, want %s", got, want)
	}
	if got, want := path, filepath.Join(dir, newer); got != want {
		t.Errorf("Open(latest) path = %s, want %s", got, want)
	}
	if m, _, err := Open(dir, "shop", older); err != nil || m.ID != older {
		t.Errorf("Open(%s) = %v, %v", older, m, err)
	}
	if _, _, err := Open(dir, "shop", "20200101-000000-0000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(absent) error = %v, want ErrNotFound", err)
	}
	if _, _, err := Open(dir, "shop", "../etc"); err == nil {
		t.Error("Open(../etc) succeeded")
	}

	// A manifest copied into another backup's directory is refused.
	copied := "20261120-000000-eeee"
	if err := os.Mkdir(filepath.Join(dir, copied), 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, older, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, copied, ManifestName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, "shop", copied); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Open(copied) error = %v, want id mismatch", err)
	}
}
