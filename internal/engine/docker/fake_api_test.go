package docker

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeAPI is a client.APIClient that answers only the calls the tests
// need. Every other method is the nil embedded interface and panics, so a
// test that reaches an unexpected call fails loudly.
type fakeAPI struct {
	client.APIClient

	mu     sync.Mutex
	calls  map[string]int
	errs   map[string][]error // per method: errors returned by the first calls, in order
	create []createCall
	// onCreate, when set, runs during ContainerCreate (with its context).
	onCreate func(ctx context.Context)
}

type createCall struct {
	Config *container.Config
	Host   *container.HostConfig
	Name   string
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{calls: map[string]int{}, errs: map[string][]error{}}
}

// failFirst makes the next calls of method fail with errs, one each.
func (f *fakeAPI) failFirst(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = append(f.errs[method], errs...)
}

func (f *fakeAPI) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// enter records a call and returns the injected error for it, if any.
func (f *fakeAPI) enter(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if q := f.errs[method]; len(q) > 0 {
		f.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeAPI) ContainerStop(ctx context.Context, id string, o container.StopOptions) error {
	return f.enter("ContainerStop")
}

func (f *fakeAPI) ContainerStart(ctx context.Context, id string, o container.StartOptions) error {
	return f.enter("ContainerStart")
}

func (f *fakeAPI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	if err := f.enter("ContainerInspect"); err != nil {
		return container.InspectResponse{}, err
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, State: &container.State{Status: "running"}},
		Config:            &container.Config{},
	}, nil
}

func (f *fakeAPI) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	if err := f.enter("ContainerList"); err != nil {
		return nil, err
	}
	return []container.Summary{{ID: "0123456789abcdef", Names: []string{"/p-db-1"}, State: "running",
		Labels: map[string]string{"com.docker.compose.service": "db", "com.docker.compose.container-number": "1"}}}, nil
}

func (f *fakeAPI) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	if err := f.enter("VolumeInspect"); err != nil {
		return volume.Volume{}, err
	}
	return volume.Volume{Name: name, Driver: "local"}, nil
}

func (f *fakeAPI) ContainerRemove(ctx context.Context, id string, o container.RemoveOptions) error {
	return f.enter("ContainerRemove")
}

func (f *fakeAPI) ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error) {
	if err := f.enter("ContainerCreate"); err != nil {
		return container.CreateResponse{}, err
	}
	if f.onCreate != nil {
		f.onCreate(ctx)
		if err := ctx.Err(); err != nil {
			return container.CreateResponse{}, err // created on the engine, but the caller never learns its ID
		}
	}
	f.mu.Lock()
	f.create = append(f.create, createCall{Config: cfg, Host: host, Name: name})
	f.mu.Unlock()
	return container.CreateResponse{ID: "helper0123456789"}, nil
}

// retried is the Docker engine over api wrapped the way the plugin wraps
// it, with the back-off shrunk (or stretched) to base.
func retried(api *fakeAPI, base time.Duration) engine.Engine {
	p := engine.DefaultRetry(Transient)
	p.Base = base
	return engine.WithRetry(New(api, "test"), p)
}

// Errors as the docker client returns them.
var (
	errReset       = fmt.Errorf("Post \"http://docker/containers/x/stop\": %w", &net.OpError{Op: "read", Net: "unix", Err: syscall.ECONNRESET})
	errServer      = errdefs.ErrInternal.WithMessage("Error response from daemon: 500 Internal Server Error")
	errNotFound    = errdefs.ErrNotFound.WithMessage("No such container: x")
	errConflict    = errdefs.ErrConflict.WithMessage("Conflict: container is being removed")
	errRefused     = connectionFailed()
	errUnavailable = errdefs.ErrUnavailable.WithMessage("503 Service Unavailable")
)

// connectionFailed is the error the client returns when the engine's socket
// refuses the connection, made the way the client makes it.
func connectionFailed() error {
	c, err := client.NewClientWithOpts(client.WithHost("unix:///nonexistent/docker.sock"))
	if err != nil {
		panic(err)
	}
	_, err = c.Ping(context.Background())
	return err
}
