package backup

import (
	"context"
	"io"

	"github.com/docker-autobackup/docker-autobackup/compose"
)

// VolumeInfo describes a volume on the engine.
type VolumeInfo struct {
	Name    string
	Driver  string
	Options map[string]string
	Labels  map[string]string
}

// HelperImage is the image helper containers are created from.
type HelperImage struct {
	Ref    string
	CanRun bool   // it holds our static binary, so a helper can run our code
	Reason string // why CanRun is false
}

// Mount mounts a named volume into a helper.
type Mount struct {
	Volume   string
	Target   string
	ReadOnly bool
}

// Bind mounts a directory of the plugin's machine into a helper. It only
// works when the engine runs there too (or shares the folder with it); the
// engine refuses a source path it does not have.
type Bind struct {
	Source   string // absolute path on the plugin's machine
	Target   string
	ReadOnly bool
}

// HelperSpec describes a helper container.
type HelperSpec struct {
	Image    string
	Project  string // recorded in a label
	Mounts   []Mount
	Binds    []Bind
	Cmd      []string // empty for helpers that are never started
	KeepLogs bool     // keep the output of a started helper (short)
}

// Engine is what a backup or restore needs from the Docker engine, on top
// of driving the project's containers.
type Engine interface {
	compose.Engine
	// Volume inspects a volume; compose.ErrNotFound if it does not exist.
	Volume(ctx context.Context, name string) (VolumeInfo, error)
	// VolumeUsers lists every container (of any project, helpers
	// included) that mounts the volume, running or not. Read-only.
	VolumeUsers(ctx context.Context, volume string) ([]compose.Container, error)
	// CreateVolume creates a volume.
	CreateVolume(ctx context.Context, v VolumeInfo) error
	// ImageDigests returns the repo digests of an image ID.
	ImageDigests(ctx context.Context, imageID string) ([]string, error)
	// HelperImage ensures the helper image exists (idempotent).
	HelperImage(ctx context.Context) (HelperImage, error)
	// CreateHelper creates a helper container without starting it.
	CreateHelper(ctx context.Context, spec HelperSpec) (string, error)
	// CopyFrom streams a path of a container out as tar.
	CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error)
	// CopyTo extracts a tar stream into a path of a container.
	CopyTo(ctx context.Context, id, path string, r io.Reader) error
	// RunHelper starts a helper and waits for it to exit.
	RunHelper(ctx context.Context, id string) (code int, output string, err error)
	// RemoveHelper removes a helper; removing a missing one is not an error.
	RemoveHelper(ctx context.Context, id string) error
	Execer
}

// ExecSpec is a command to run in a running container.
type ExecSpec struct {
	Cmd        []string
	User       string
	Privileged bool
	WorkingDir string
	Env        []string
	// Output, when set, receives the command's stdout as it arrives; the
	// output Exec returns then holds the tail of its stderr only.
	Output io.Writer
}

// Execer runs commands in containers (hooks).
type Execer interface {
	// Exec runs spec in the container and returns its exit code and the
	// tail of its combined output (of stderr only when spec.Output takes
	// stdout). Nothing is written to spec.Output once Exec returned.
	Exec(ctx context.Context, id string, spec ExecSpec) (code int, output string, err error)
}
