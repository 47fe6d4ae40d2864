package compose

import (
	"context"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// Engine is the part of the Docker engine this package drives: the
// project's containers. The contract of each call is in engine.Engine.
type Engine interface {
	Containers(ctx context.Context, project string) ([]engine.Container, error)
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	StartContainer(ctx context.Context, id string) error
	InspectContainer(ctx context.Context, id string) (engine.Status, error)
}

var _ Engine = engine.Engine(nil)
