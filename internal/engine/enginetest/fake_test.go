package enginetest

import (
	"archive/tar"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// fakeHarness runs the conformance suite against the fake.
type fakeHarness struct {
	f *Fake
	n atomic.Int64
}

func (h *fakeHarness) Engine() engine.Engine { return h.f }
func (h *fakeHarness) Image() string         { return HelperRef }
func (h *fakeHarness) Unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, h.n.Add(1))
}
func (h *fakeHarness) RemoveVolume(name string) { h.f.RemoveVolume(name) }

func (h *fakeHarness) AddService(t *testing.T, project, svc string, volumes []string, healthcheck bool) string {
	id := project + "-" + svc + "-1"
	c := &Container{Container: engine.Container{ID: id, Name: id, Service: svc, Number: 1, Project: project, State: "running"}, Volumes: volumes}
	if healthcheck {
		c.Health, c.HealthyAfter = "healthy", 1
	}
	h.f.AddContainer(c)
	return id
}

func (h *fakeHarness) AddVolume(t *testing.T, name string, files map[string]string) {
	var fs []File
	for n, content := range files {
		fs = append(fs, File{Name: "./" + n, Type: tar.TypeReg, Mode: 0o644, Content: content})
	}
	h.f.AddVolume(engine.VolumeInfo{Name: name, Driver: "local"}, fs...)
	t.Cleanup(func() { h.f.RemoveVolume(name) })
}

func TestConformance(t *testing.T) {
	Run(t, &fakeHarness{f: New()})
}
