package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"
)

func TestRootedRenamesUnderRoot(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: "./a", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "./d/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./d/hl", Typeflag: tar.TypeLink, Linkname: "./a"},
		{Name: "./ln", Typeflag: tar.TypeSymlink, Linkname: "/etc/localtime"},
	} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	var out bytes.Buffer
	if err := Rooted(context.Background(), &out, &in, SafetyOptions{}, "v"); err != nil {
		t.Fatal(err)
	}
	type entry struct{ name, link string }
	var got []entry
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Linkname})
	}
	want := []entry{{"v/", ""}, {"v/a", ""}, {"v/d/", ""}, {"v/d/hl", "v/a"}, {"v/ln", "/etc/localtime"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		// tar.Writer keeps a trailing slash on directories it is given.
		if got[i].name != want[i].name && got[i].name+"/" != want[i].name && got[i].name != want[i].name+"/" || got[i].link != want[i].link {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestRootedRefusesHostile(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "./../x", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	if err := Rooted(context.Background(), io.Discard, &in, SafetyOptions{}, "v"); err == nil {
		t.Fatal("an escaping entry was accepted")
	}
}
