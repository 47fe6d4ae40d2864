package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

func TestVerify(t *testing.T) {
	good := sampleTar(t)
	brokenTar := good[:len(good)-3000] // valid zstd, tar cut inside the big file
	hostile := tarball(t, symlink("./etc", "/etc"), file("./etc/passwd", "root::0:0::/:/bin/sh\n"))
	device := tarball(t, ent{name: "./null", typ: '3'})

	for _, tc := range []struct {
		name   string
		tar    []byte
		opts   SafetyOptions
		damage func(t *testing.T, path string, v *Volume) // changes the archive file or the manifest's volume
		want   []string                                   // substrings of the error; none for a good archive
	}{
		{name: "good", tar: good},
		{name: "device allowed", tar: device, opts: SafetyOptions{AllowDevices: true}},
		{name: "flipped byte", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			data := readFile(t, path)
			data[len(data)/2] ^= 0x01
			writeFile(t, path, data)
		}, want: []string{"checksum mismatch: manifest says ", ", file has "}},
		{name: "truncated archive", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			data := readFile(t, path)
			writeFile(t, path, data[:len(data)/2])
		}, want: []string{"checksum mismatch", "size mismatch: manifest says", "stream truncated"}},
		{name: "manifest lies about checksum", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			v.SHA256 = strings.Repeat("0", 64)
		}, want: []string{"checksum mismatch: manifest says " + strings.Repeat("0", 64) + ", file has "}},
		{name: "manifest lies about tar size", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			v.TarBytes++
		}, want: []string{"tar size mismatch"}},
		{name: "broken tar in valid zstd", tar: brokenTar, want: []string{`entry "./data/big.bin": read content: stream truncated`}},
		{name: "hostile tar", tar: hostile, want: []string{`entry "./etc/passwd": path goes through symlink "etc"`}},
		{name: "device refused", tar: device, want: []string{`entry "./null": device node`}},
		{name: "missing archive", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"no such file"}},
		{name: "archive replaced by symlink", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			if err := os.Rename(path, path+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(path)+".moved", path); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"not a regular file"}},
		{name: "archive name escapes", tar: good, damage: func(t *testing.T, path string, v *Volume) {
			v.Archive = "../" + v.Archive
		}, want: []string{"not a plain file name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			id := NewID(t0)
			m := writeBackup(t, dir, id, t0, map[string][]byte{"shop_data": tc.tar})
			path := filepath.Join(dir, id)
			if tc.damage != nil {
				tc.damage(t, archivePath(dir, id, m.Volumes[0]), &m.Volumes[0])
			}
			checks := Verify(t.Context(), path, m, tc.opts)
			if len(checks) != 1 {
				t.Fatalf("got %d checks, want 1", len(checks))
			}
			c := checks[0]
			if c.Volume != "shop_data" || c.Archive != m.Volumes[0].Archive {
				t.Errorf("check names %q/%q", c.Volume, c.Archive)
			}
			if len(tc.want) == 0 {
				if c.Err != nil {
					t.Fatalf("Verify: %v", c.Err)
				}
				return
			}
			if c.Err == nil {
				t.Fatal("Verify found nothing wrong")
			}
			for _, want := range tc.want {
				if !strings.Contains(c.Err.Error(), want) {
					t.Errorf("Verify error %q does not contain %q", c.Err, want)
				}
			}
			if !strings.Contains(c.Err.Error(), "shop_data") {
				t.Errorf("Verify error %q does not name the file", c.Err)
			}
		})
	}
}

func TestVerifyCancelled(t *testing.T) {
	dir := t.TempDir()
	id := NewID(t0)
	m := writeBackup(t, dir, id, t0, map[string][]byte{"a1": sampleTar(t), "b1": sampleTar(t)})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range Verify(ctx, filepath.Join(dir, id), m, SafetyOptions{}) {
		if !errors.Is(c.Err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", c.Volume, c.Err)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyProgress: each archive is reported from start to done, the
// done event with every byte of the archive read.
func TestVerifyProgress(t *testing.T) {
	dir := t.TempDir()
	id := NewID(t0)
	m := writeBackup(t, dir, id, t0, map[string][]byte{"a1": sampleTar(t), "b1": sampleTar(t)})
	var got []string
	r := progress.Func(func(e progress.Event) {
		if e.Kind != progress.VolumeBytes {
			got = append(got, fmt.Sprintf("%s %s %d/%d", e.Kind, e.Volume, e.Bytes, e.Total))
		}
	})
	for _, c := range VerifyProgress(t.Context(), filepath.Join(dir, id), m, SafetyOptions{}, r) {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
	}
	var want []string
	for _, v := range m.Volumes {
		want = append(want, fmt.Sprintf("volume-start %s 0/%d", v.Name, v.ArchiveBytes), fmt.Sprintf("volume-done %s %d/%d", v.Name, v.ArchiveBytes, v.ArchiveBytes))
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
