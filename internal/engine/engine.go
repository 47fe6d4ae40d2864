package engine

import (
	"context"
	"errors"
	"io"
	"time"
)

// Labels compose (v1 and v2) puts on the containers it creates.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
	LabelComposeOneOff  = "com.docker.compose.oneoff"
	LabelComposeNumber  = "com.docker.compose.container-number"
)

// Labels we put on what we create, so that it can be found again (clean,
// the collection of orphaned staging volumes) and told from the user's.
const (
	// LabelHelper marks a helper container.
	LabelHelper = "io.docker-autobackup.helper"
	// LabelProject names the compose project a helper or staging volume
	// works for.
	LabelProject = "io.docker-autobackup.project"
	// LabelStaging marks a staging volume (the copy a staged backup keeps
	// between runs).
	LabelStaging = "io.docker-autobackup.staging"
	// LabelStagingSource names the volume a staging volume copies.
	LabelStagingSource = "io.docker-autobackup.source"
	// LabelInstallation tells which installation imported a helper image.
	LabelInstallation = "io.docker-autobackup.installation"
)

// ErrNotFound is returned (wrapped) when the container, volume or image a
// call names does not exist.
var ErrNotFound = errors.New("not found")

// Container is what we need to know about one container.
type Container struct {
	ID      string
	Name    string
	Service string
	Number  int
	OneOff  bool
	Project string // the compose project label; "" for a container of no project
	Helper  bool   // one of our own helper containers
	State   string // "running", "exited", "created", "paused", "restarting", "dead"
	Image   string // image reference the container was created from
	ImageID string
}

// Status is a container's runtime status, from an inspect.
type Status struct {
	State          string // as in Container.State
	ExitCode       int
	HasHealthcheck bool
	Health         string // "", "starting", "healthy", "unhealthy"
	HealthLog      string // output of the last failing probe, short
}

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
	CanRun bool   // it holds this program, so a helper can run our code
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
	Project  string // recorded in LabelProject
	Mounts   []Mount
	Binds    []Bind
	Cmd      []string // empty for helpers that are never started
	KeepLogs bool     // keep the output of a started helper (short)
}

// ExecSpec is a command to run in a running container.
type ExecSpec struct {
	Cmd        []string
	User       string
	Privileged bool
	WorkingDir string
	Env        []string
	// Output, when set, receives the command's standard output as it is
	// written (its standard error still goes to the returned tail only).
	Output io.Writer
}

// Engine is every call this program makes to a Docker engine. Packages
// that drive the engine declare the narrower interface they need (see
// compose.Engine, backup.Engine); this one is what an implementation
// (package engine/docker, the shared fake in engine/enginetest) provides
// and what WithRetry wraps.
//
// Each method's comment says whether it is idempotent: only those are
// retried on a transient error.
type Engine interface {
	// Containers lists all containers (running or not) labelled as
	// belonging to the compose project, one-off containers included
	// (OneOff says so). Read-only: idempotent.
	Containers(ctx context.Context, project string) ([]Container, error)
	// VolumeUsers lists every container, of any project or none, helpers
	// included, that mounts the volume, running or not. Read-only:
	// idempotent.
	VolumeUsers(ctx context.Context, volume string) ([]Container, error)
	// StopContainer stops a running container, giving it timeout to exit
	// before the engine kills it. Stopping a stopped container is not an
	// error: idempotent. ErrNotFound if it does not exist.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// StartContainer starts a stopped container. Starting a running
	// container is not an error: idempotent. ErrNotFound if it does not
	// exist.
	StartContainer(ctx context.Context, id string) error
	// InspectContainer reports the container's state; ErrNotFound if it is
	// gone. Read-only: idempotent.
	InspectContainer(ctx context.Context, id string) (Status, error)

	// Volume inspects a volume; ErrNotFound if it does not exist.
	// Read-only: idempotent.
	Volume(ctx context.Context, name string) (VolumeInfo, error)
	// CreateVolume creates a volume. Not retried: a retry after a create
	// that did happen could not tell the volume from someone else's.
	CreateVolume(ctx context.Context, v VolumeInfo) error
	// ImageDigests returns the repo digests of an image ID; ErrNotFound if
	// the image is gone. Read-only: idempotent.
	ImageDigests(ctx context.Context, imageID string) ([]string, error)

	// HelperImage makes sure the helper image of this program exists,
	// importing it when it does not. Idempotent: the image is tagged by
	// its content.
	HelperImage(ctx context.Context) (HelperImage, error)
	// ProbeHelper says what HelperImage would give, changing nothing.
	// Read-only: idempotent.
	ProbeHelper(ctx context.Context) (HelperImage, error)
	// CreateHelper creates (does not start) a helper container: no
	// network, labelled as ours. Not retried: a create whose answer was
	// lost would leave a second helper holding the volume. A caller that
	// is cancelled mid-create gets no helper left behind.
	CreateHelper(ctx context.Context, spec HelperSpec) (string, error)
	// CopyFrom opens a tar stream of a path of a container. Opening is
	// read-only and idempotent; the stream itself is not retried.
	CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error)
	// CopyTo extracts a tar stream into a path of a container, keeping the
	// numeric owners. Not retried: it consumes r.
	CopyTo(ctx context.Context, id, path string, r io.Reader) error
	// RunHelper starts a created helper, waits for it to exit and returns
	// its exit code and the tail of its output. Not retried: the command
	// would run twice.
	RunHelper(ctx context.Context, id string) (code int, output string, err error)
	// Exec runs a command in a running container, like `docker exec`, and
	// returns its exit code and the tail of its combined output. Not
	// retried: the command would run twice.
	Exec(ctx context.Context, id string, spec ExecSpec) (code int, output string, err error)
	// RemoveHelper force-removes a helper container and its anonymous
	// volumes; removing a missing one is not an error: idempotent.
	RemoveHelper(ctx context.Context, id string) error

	// Helpers lists the helper containers that exist (for clean).
	// Read-only: idempotent.
	Helpers(ctx context.Context) ([]string, error)
	// CleanProject removes the helpers and staging volumes of a project
	// and returns what it removed. Idempotent.
	CleanProject(ctx context.Context, project string) ([]string, error)
	// CollectStaging removes staging volumes whose source volume is gone
	// and returns their names. Idempotent.
	CollectStaging(ctx context.Context) ([]string, error)
	// CleanHelperImages removes the helper images this installation
	// imported, except keep, that no container uses, and returns them.
	// Idempotent.
	CleanHelperImages(ctx context.Context, keep string) ([]string, error)
}
