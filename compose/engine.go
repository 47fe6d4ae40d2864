package compose

import (
	"context"
	"errors"
	"time"
)

// Labels compose (v1 and v2) puts on the containers it creates.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelOneOff  = "com.docker.compose.oneoff"
	LabelNumber  = "com.docker.compose.container-number"
)

// Container is what we need to know about one container of a project.
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

// ErrNotFound is returned by an Engine when the container (or volume) does
// not exist.
var ErrNotFound = errors.New("not found")

// Engine is the part of the Docker engine this package drives.
type Engine interface {
	// Containers lists all containers (running or not) labelled as
	// belonging to project, one-off containers included (OneOff says so).
	Containers(ctx context.Context, project string) ([]Container, error)
	// StopContainer stops a running container, giving it timeout to exit
	// before the engine kills it. Stopping a stopped container is not an
	// error.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// StartContainer starts a stopped container. Starting a running
	// container is not an error.
	StartContainer(ctx context.Context, id string) error
	// InspectContainer reports the container's state; ErrNotFound if it is
	// gone.
	InspectContainer(ctx context.Context, id string) (Status, error)
}
