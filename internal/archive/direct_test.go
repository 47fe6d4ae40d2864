package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// writeDirect plays the helper: it checks the token and writes data into a
// direct file, then finishes it.
func writeDirect(t *testing.T, p *Pending, name string, data []byte) (*DirectFile, Volume) {
	t.Helper()
	d, err := p.Direct(name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(p.Path(), d.TempName())
	if b, err := os.ReadFile(path); err != nil || string(b) != d.Token {
		t.Fatalf("direct file holds %q (%v), want the token", b, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	v := Volume{Name: name}
	if err := d.Finish(&v, protocol.PackResult{TarBytes: 10240, ArchiveBytes: int64(len(data)), Entries: 1}); err != nil {
		t.Fatal(err)
	}
	return d, v
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A direct archive gets its checksum from the plugin, which reads the file
// back, in the background (HashDirect) or at Commit.
func TestDirectArchivesAreHashed(t *testing.T) {
	for _, background := range []bool{true, false} {
		dir := t.TempDir()
		p, err := Begin(dir, NewID(t0), "shop")
		if err != nil {
			t.Fatal(err)
		}
		a, b := []byte("first archive"), []byte("second archive")
		_, va := writeDirect(t, p, "shop_a", a)
		if background {
			p.HashDirect()
			p.HashDirect() // a second call while the first runs does nothing
		}
		_, vb := writeDirect(t, p, "shop_b", b) // finished after HashDirect started
		if va.SHA256 != "" || vb.SHA256 != "" {
			t.Fatalf("Finish set a checksum the helper no longer computes: %q %q", va.SHA256, vb.SHA256)
		}
		m := &Manifest{Project: "shop", Mode: ModeStream, Volumes: []Volume{va, vb}}
		if err := p.Commit(m); err != nil {
			t.Fatalf("background %v: Commit: %v", background, err)
		}
		if m.Volumes[0].SHA256 != hexSum(a) || m.Volumes[1].SHA256 != hexSum(b) {
			t.Errorf("background %v: manifest checksums %q %q, want those of the files", background, m.Volumes[0].SHA256, m.Volumes[1].SHA256)
		}
	}
}

// An archive that is gone by the time it is hashed fails the commit, and
// Abort still cleans up.
func TestDirectHashFailureFailsCommit(t *testing.T) {
	dir := t.TempDir()
	p, err := Begin(dir, NewID(t0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	_, v := writeDirect(t, p, "shop_a", []byte("archive"))
	if err := os.Remove(filepath.Join(p.Path(), v.Archive)); err != nil {
		t.Fatal(err)
	}
	p.HashDirect()
	err = p.Commit(&Manifest{Project: "shop", Mode: ModeStream, Volumes: []Volume{v}})
	if err == nil || !strings.Contains(err.Error(), v.Archive) {
		t.Fatalf("Commit = %v, want an error naming %s", err, v.Archive)
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("after Abort dir holds %q", got)
	}
}

// Abort while HashDirect reads the files waits for it and removes everything.
func TestDirectAbortWhileHashing(t *testing.T) {
	dir := t.TempDir()
	p, err := Begin(dir, NewID(t0), "shop")
	if err != nil {
		t.Fatal(err)
	}
	writeDirect(t, p, "shop_a", make([]byte, 8<<20))
	p.HashDirect()
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("after Abort dir holds %q", got)
	}
}
