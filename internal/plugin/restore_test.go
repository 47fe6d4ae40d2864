package plugin

import (
	"strings"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
)

// TestPrintImages: an image that several services ran is listed once,
// with those services.
func TestPrintImages(t *testing.T) {
	m := &archive.Manifest{Services: []archive.Service{
		{Name: "app", Image: "shopd:latest", ImageID: "sha256:4f381f1c8df3aaaaaaaa"},
		{Name: "db", Image: "shopd:latest", ImageID: "sha256:4f381f1c8df3aaaaaaaa"},
		{Name: "proxy", Image: "nginx:1.27", RepoDigests: []string{"nginx@sha256:abc"}},
	}}
	var out strings.Builder
	printImages(&out, m)
	want := "The data belongs to these images (as running at backup time):\n" +
		"  app, db          shopd:latest (sha256:4f381f1c8df3)\n" +
		"  proxy            nginx:1.27 (nginx@sha256:abc)\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
