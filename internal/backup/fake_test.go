package backup_test

import (
	"io"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/enginetest"
)

// The fake engine of these tests is the shared one (engine/enginetest);
// what follows builds its inputs.

// ctr returns a container of service svc, number 1, in state, listed for
// any project.
func ctr(svc, state string) *enginetest.Container {
	id := svc + "-1"
	return &enginetest.Container{Container: engine.Container{
		ID: id, Name: "p-" + id, Service: svc, Number: 1, State: state,
		Image: svc + ":latest", ImageID: "sha256:" + svc,
	}}
}

// mustTar is enginetest.BuildTar for tests.
func mustTar(t *testing.T, files []enginetest.File) []byte {
	t.Helper()
	data, err := enginetest.BuildTar(files)
	if err != nil {
		t.Fatalf("build tar: %v", err)
	}
	return data
}

// failingReader returns data, then err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, r.err
	}
	return n, err
}
