package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/command"

	autobackup "github.com/docker-autobackup/docker-autobackup"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/engine/docker"
)

// newEngine returns the engine of the user's docker context, its
// idempotent calls retried on transient errors. The API version is
// negotiated on the first call.
func newEngine(ctx context.Context, dockerCli command.Cli) (engine.Engine, error) {
	api := dockerCli.Client()
	if _, err := api.Ping(ctx); err != nil {
		if strings.Contains(err.Error(), "permission denied") {
			return nil, fmt.Errorf("cannot reach the Docker engine: %w; your user may not use the engine's socket: add it to the docker group (sudo usermod -aG docker $USER, then log in again) or run as root", err)
		}
		return nil, fmt.Errorf("cannot reach the Docker engine: %w; is the daemon running, and is your docker context right (docker context ls)?", err)
	}
	return engine.WithRetry(docker.New(api, autobackup.Version()), engine.DefaultRetry(docker.Transient)), nil
}
