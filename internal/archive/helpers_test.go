package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ent describes one tar entry for tarball.
type ent struct {
	name string
	typ  byte
	link string
	body string
}

func file(name, body string) ent  { return ent{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) ent         { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent { return ent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) ent {
	return ent{name: name, typ: tar.TypeLink, link: to}
}

// tarball builds a complete tar stream (PAX format, so any name works).
func tarball(t *testing.T, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	writeEntries(t, tw, entries)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeEntries(t *testing.T, tw *tar.Writer, entries []ent) {
	t.Helper()
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Linkname: e.link,
			Mode:     0o644,
			Size:     int64(len(e.body)),
			ModTime:  time.Unix(1700000000, 0),
			Format:   tar.FormatPAX,
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
}

// sampleTar is a small but varied volume.
func sampleTar(t *testing.T) []byte {
	t.Helper()
	return tarball(t,
		dir("./"),
		dir("./data/"),
		file("./data/a.txt", "hello"),
		file("./data/big.bin", string(bytes.Repeat([]byte("0123456789abcdef"), 40000))),
		symlink("./data/tz", "/etc/localtime"),
		hardlink("./data/a-link", "./data/a.txt"),
	)
}

// writeBackup commits a backup with one volume per tar stream and returns
// its manifest.
func writeBackup(t *testing.T, dir, id string, started time.Time, tars map[string][]byte) *Manifest {
	t.Helper()
	return writeProjectBackup(t, dir, "shop", id, started, tars)
}

// writeProjectBackup is writeBackup for another project than "shop".
func writeProjectBackup(t *testing.T, dir, project, id string, started time.Time, tars map[string][]byte) *Manifest {
	t.Helper()
	p, err := Begin(dir, id, project)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	m := &Manifest{ID: id, Project: project, Mode: ModeStream, Started: started, Finished: started.Add(time.Second)}
	for name, data := range tars {
		v := Volume{Name: name, Key: name}
		if err := p.WriteVolume(t.Context(), &v, bytes.NewReader(data), 1, nil); err != nil {
			t.Fatal(err)
		}
		m.Volumes = append(m.Volumes, v)
	}
	if err := p.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func archivePath(dir, id string, v Volume) string {
	return filepath.Join(dir, id, v.Archive)
}
