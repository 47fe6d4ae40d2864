package backup

import (
	"context"
	"io"

	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// Engine is the part of the Docker engine a backup or a restore drives, on
// top of the project's containers. The contract of each call is in
// engine.Engine.
type Engine interface {
	compose.Engine
	Volume(ctx context.Context, name string) (engine.VolumeInfo, error)
	VolumeUsers(ctx context.Context, volume string) ([]engine.Container, error)
	CreateVolume(ctx context.Context, v engine.VolumeInfo) error
	ImageDigests(ctx context.Context, imageID string) ([]string, error)
	HelperImage(ctx context.Context) (engine.HelperImage, error)
	CreateHelper(ctx context.Context, spec engine.HelperSpec) (string, error)
	CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error)
	CopyTo(ctx context.Context, id, path string, r io.Reader) error
	RunHelper(ctx context.Context, id string) (code int, output string, err error)
	RemoveHelper(ctx context.Context, id string) error
	Execer
}

// Execer runs commands in containers (hooks).
type Execer interface {
	Exec(ctx context.Context, id string, spec engine.ExecSpec) (code int, output string, err error)
}

var _ Engine = engine.Engine(nil)
