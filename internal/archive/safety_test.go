package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestCheckTarHostile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []ent
		opts    SafetyOptions
		want    string // substring of the error
	}{
		{"dotdot", []ent{file("../../etc/passwd", "x")}, SafetyOptions{}, `entry "../../etc/passwd": path escapes the volume`},
		{"dotdot after dir", []ent{file("./a/../../x", "x")}, SafetyOptions{}, `entry "./a/../../x": path escapes the volume`},
		{"dotdot alone", []ent{dir("..")}, SafetyOptions{}, "path escapes the volume"},
		{"absolute", []ent{file("/etc/passwd", "x")}, SafetyOptions{}, `entry "/etc/passwd": absolute path`},
		{"write through symlink", []ent{symlink("./etc", "/etc"), file("./etc/passwd", "x")}, SafetyOptions{}, `entry "./etc/passwd": path goes through symlink "etc"`},
		{"write through relative symlink", []ent{symlink("up", "../.."), file("up/x", "x")}, SafetyOptions{}, `path goes through symlink "up"`},
		{"dir through symlink", []ent{dir("a/"), symlink("a/b", "/"), dir("./a/b/c/")}, SafetyOptions{}, `path goes through symlink "a/b"`},
		{"dotdot through symlink", []ent{symlink("s", "/tmp"), file("s/../x", "x")}, SafetyOptions{}, `path goes through symlink "s"`},
		{"symlink through symlink", []ent{symlink("s", "/"), symlink("s/t", "x")}, SafetyOptions{}, `path goes through symlink "s"`},
		{"hardlink absolute", []ent{hardlink("shadow", "/etc/shadow")}, SafetyOptions{}, `entry "shadow": hard link target "/etc/shadow": absolute path`},
		{"hardlink outside", []ent{hardlink("shadow", "../../etc/shadow")}, SafetyOptions{}, "path escapes the volume"},
		{"hardlink through symlink", []ent{symlink("s", "/etc"), hardlink("shadow", "s/shadow")}, SafetyOptions{}, `hard link target "s/shadow": path goes through symlink "s"`},
		{"hardlink to nothing", []ent{hardlink("l", "missing")}, SafetyOptions{}, `hard link target "missing" is not an earlier regular file`},
		{"hardlink to later file", []ent{hardlink("l", "f"), file("f", "x")}, SafetyOptions{}, "not an earlier regular file"},
		{"hardlink to dir", []ent{dir("d"), hardlink("l", "d")}, SafetyOptions{}, "not an earlier regular file"},
		{"hardlink to symlink", []ent{symlink("s", "/etc/shadow"), hardlink("l", "s")}, SafetyOptions{}, "not an earlier regular file"},
		{"hardlink to file replaced by symlink", []ent{file("f", "x"), symlink("f", "/etc/shadow"), hardlink("l", "f")}, SafetyOptions{}, "not an earlier regular file"},
		{"hardlink to itself", []ent{file("f", "x"), hardlink("./f", "f")}, SafetyOptions{}, "hard link to itself"},
		{"char device", []ent{{name: "null", typ: tar.TypeChar}}, SafetyOptions{}, `entry "null": device node (character device) refused`},
		{"block device", []ent{{name: "sda", typ: tar.TypeBlock}}, SafetyOptions{}, "device node (block device) refused"},
		{"device allowed but escaping", []ent{{name: "../null", typ: tar.TypeChar}}, SafetyOptions{AllowDevices: true}, "path escapes the volume"},
		{"root replaced by symlink", []ent{symlink("./", "/")}, SafetyOptions{}, "symlink would replace the volume root"},
		{"root replaced by file", []ent{file(".", "x")}, SafetyOptions{}, "would replace the volume root"},
		{"contiguous file", []ent{{name: "c", typ: tar.TypeCont}}, SafetyOptions{}, `entry "c": unsupported entry type contiguous file`},
		{"unknown type", []ent{{name: "u", typ: 'Z'}}, SafetyOptions{}, `unsupported entry type 'Z'`},
		{"multi-volume", []ent{{name: "m", typ: 'M'}}, SafetyOptions{}, "unsupported entry type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tarball(t, tc.entries...)
			_, err := CheckTar(bytes.NewReader(data), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckTar error = %v, want it to contain %q", err, tc.want)
			}
			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) {
				t.Errorf("error %v is not an *UnsafeEntryError", err)
			}

			// Sanitize refuses it too, before writing any of the entry.
			var out bytes.Buffer
			err = Sanitize(t.Context(), &out, bytes.NewReader(data), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sanitize error = %v, want it to contain %q", err, tc.want)
			}
			written := 0
			tr := tar.NewReader(&out)
			for {
				if _, err := tr.Next(); err != nil {
					break
				}
				written++
			}
			if written >= len(tc.entries) {
				t.Errorf("Sanitize wrote %d entries, the refused one included", written)
			}
		})
	}
}

func TestCheckTarGlobalHeader(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "/etc/passwd"}}); err != nil {
		t.Fatal(err)
	}
	writeEntries(t, tw, []ent{file("x", "y")})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := CheckTar(&buf, SafetyOptions{})
	if want := "pax global header"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckTar error = %v, want %q", err, want)
	}
}

func TestCheckTarBenign(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []ent
		opts    SafetyOptions
		want    Stats
	}{
		{"root entry", []ent{dir("./"), dir("."), file("./a", "x")}, SafetyOptions{}, Stats{Entries: 3, Dirs: 2, Files: 1, Bytes: 1}},
		{"absolute symlink target", []ent{symlink("./localtime", "/etc/localtime")}, SafetyOptions{}, Stats{Entries: 1, Symlinks: 1}},
		{"dangling and escaping symlink targets", []ent{symlink("a", "does/not/exist"), symlink("b", "../../outside")}, SafetyOptions{}, Stats{Entries: 2, Symlinks: 2}},
		{"hard link to earlier file", []ent{dir("./d/"), file("./d/f", "abc"), hardlink("./d/g", "./d/f"), hardlink("h", "d/g")}, SafetyOptions{}, Stats{Entries: 4, Dirs: 1, Files: 1, Hardlinks: 2, Bytes: 3}},
		{"odd names", []ent{file("./with space", "1"), file("./ünïcødé ✓", "2"), file("./new\nline", "3"), file("./-dash", "4"), file("./..dots", "5"), file("./a/./b/../c", "6")}, SafetyOptions{}, Stats{Entries: 6, Files: 6, Bytes: 6}},
		{"long name", []ent{file("./"+strings.Repeat("d/", 100)+strings.Repeat("n", 200), "x")}, SafetyOptions{}, Stats{Entries: 1, Files: 1, Bytes: 1}},
		{"symlink replaced by dir", []ent{symlink("a", "/etc"), dir("a/"), file("a/x", "x")}, SafetyOptions{}, Stats{Entries: 3, Symlinks: 1, Dirs: 1, Files: 1, Bytes: 1}},
		{"symlink to dir inside, not written through", []ent{dir("d"), symlink("s", "d"), file("d/x", "x")}, SafetyOptions{}, Stats{Entries: 3, Symlinks: 1, Dirs: 1, Files: 1, Bytes: 1}},
		{"fifo", []ent{{name: "./pipe", typ: tar.TypeFifo}}, SafetyOptions{}, Stats{Entries: 1}},
		{"devices allowed", []ent{{name: "./null", typ: tar.TypeChar}, {name: "./sda", typ: tar.TypeBlock}}, SafetyOptions{AllowDevices: true}, Stats{Entries: 2}},
		{"empty archive", nil, SafetyOptions{}, Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tarball(t, tc.entries...)
			got, err := CheckTar(bytes.NewReader(data), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("stats = %+v, want %+v", got, tc.want)
			}

			var out bytes.Buffer
			if err := Sanitize(t.Context(), &out, bytes.NewReader(data), tc.opts); err != nil {
				t.Fatal(err)
			}
			if got, want := entryList(t, out.Bytes()), entryList(t, data); !slices.Equal(got, want) {
				t.Errorf("Sanitize output entries %q, want %q", got, want)
			}
		})
	}
}

// entryList renders a tar stream's headers and contents for comparison.
func entryList(t *testing.T, data []byte) []string {
	t.Helper()
	var list []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return list
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, string(hdr.Typeflag)+"|"+hdr.Name+"|"+hdr.Linkname+"|"+hdr.ModTime.String()+"|"+string(body))
	}
}

func TestCheckTarTruncated(t *testing.T) {
	full := tarball(t, file("a", strings.Repeat("x", 2000)), file("b", "y"))
	noEnd := full[:len(full)-1024] // both files, no end marker
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty stream", nil, "end-of-archive marker"},
		{"no end marker", noEnd, "end-of-archive marker"},
		{"one end block", full[:len(full)-512], "end-of-archive marker"},
		{"inside content", full[:1000], `entry "a": read content: stream truncated`},
		{"inside header", full[:100], "stream truncated"},
		{"garbage header", append(bytes.Repeat([]byte{0xff}, 512), full...), "read tar after 0 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckTar(bytes.NewReader(tc.data), SafetyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckTar error = %v, want %q", err, tc.want)
			}
			if err := Sanitize(t.Context(), io.Discard, bytes.NewReader(tc.data), SafetyOptions{}); err == nil {
				t.Error("Sanitize accepted it")
			}
		})
	}
	// A reader that returns the last bytes together with io.EOF is fine.
	if _, err := CheckTar(io.MultiReader(bytes.NewReader(full), eofWithData{}), SafetyOptions{}); err != nil {
		t.Errorf("complete stream: %v", err)
	}
	if _, err := CheckTar(&dataEOFReader{data: full}, SafetyOptions{}); err != nil {
		t.Errorf("complete stream with data+EOF reads: %v", err)
	}
}

type eofWithData struct{}

func (eofWithData) Read([]byte) (int, error) { return 0, io.EOF }

// dataEOFReader returns io.EOF along with the final bytes.
type dataEOFReader struct{ data []byte }

func (r *dataEOFReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func TestSanitizeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Sanitize(ctx, io.Discard, bytes.NewReader(sampleTar(t)), SafetyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Sanitize error = %v, want context.Canceled", err)
	}
}
