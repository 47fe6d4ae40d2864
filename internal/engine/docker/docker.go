package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

const (
	helperRepo = "docker-autobackup-helper"
	// helperBinary is where the helper image holds this program.
	helperBinary = protocol.Binary
)

// helperCreateTimeout bounds the creation of a helper container, which is
// not cancelled with its caller (see CreateHelper).
const helperCreateTimeout = 30 * time.Second

// Docker talks to one engine.
type Docker struct {
	api     client.APIClient
	version string // plugin version, part of the helper image tag
}

var _ engine.Engine = (*Docker)(nil)

// New wraps an API client (from the plugin framework, already configured
// for the user's context). The client negotiates the API version on its
// first request.
func New(api client.APIClient, version string) *Docker {
	return &Docker{api: api, version: version}
}

func notFound(err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %v", engine.ErrNotFound, err)
	}
	return err
}

// Containers lists every container labelled with the compose project.
func (d *Docker) Containers(ctx context.Context, project string) ([]engine.Container, error) {
	var list []container.Summary
	list, err := d.api.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", engine.LabelComposeProject+"="+project)),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of project %s: %w", project, err)
	}
	return containers(list), nil
}

// VolumeUsers lists every container, of any project or none, that mounts
// the volume, running or not.
func (d *Docker) VolumeUsers(ctx context.Context, volume string) ([]engine.Container, error) {
	var list []container.Summary
	list, err := d.api.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("volume", volume)),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers using volume %s: %w", volume, err)
	}
	return containers(list), nil
}

func containers(list []container.Summary) []engine.Container {
	out := make([]engine.Container, 0, len(list))
	for _, c := range list {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		n, _ := strconv.Atoi(c.Labels[engine.LabelComposeNumber])
		out = append(out, engine.Container{
			ID:      c.ID,
			Name:    name,
			Service: c.Labels[engine.LabelComposeService],
			Number:  n,
			OneOff:  strings.EqualFold(c.Labels[engine.LabelComposeOneOff], "true"),
			Project: c.Labels[engine.LabelComposeProject],
			Helper:  c.Labels[engine.LabelHelper] == "true",
			State:   c.State,
			Image:   c.Image,
			ImageID: c.ImageID,
		})
	}
	return out
}

// StopContainer stops a container, giving it timeout before the kill.
func (d *Docker) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	secs := int((timeout + time.Second - 1) / time.Second)
	return notFound(d.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}))
}

// StartContainer starts a container (no-op when it runs).
func (d *Docker) StartContainer(ctx context.Context, id string) error {
	return notFound(d.api.ContainerStart(ctx, id, container.StartOptions{}))
}

// InspectContainer reports state and health.
func (d *Docker) InspectContainer(ctx context.Context, id string) (engine.Status, error) {
	js, err := d.api.ContainerInspect(ctx, id)
	if err != nil {
		return engine.Status{}, notFound(err)
	}
	var st engine.Status
	if js.State != nil {
		st.State = js.State.Status
		st.ExitCode = js.State.ExitCode
		if h := js.State.Health; h != nil {
			st.Health = h.Status
			if n := len(h.Log); n > 0 && h.Status == "unhealthy" {
				st.HealthLog = text.Truncate(text.OneLine(h.Log[n-1].Output), 200)
			}
		}
	}
	if js.Config != nil && js.Config.Healthcheck != nil && len(js.Config.Healthcheck.Test) > 0 && js.Config.Healthcheck.Test[0] != "NONE" {
		st.HasHealthcheck = true
	}
	return st, nil
}

// Volume inspects a volume; compose.ErrNotFound if it does not exist.
func (d *Docker) Volume(ctx context.Context, name string) (engine.VolumeInfo, error) {
	v, err := d.api.VolumeInspect(ctx, name)
	if err != nil {
		return engine.VolumeInfo{}, notFound(err)
	}
	return engine.VolumeInfo{Name: v.Name, Driver: v.Driver, Options: v.Options, Labels: v.Labels}, nil
}

// CreateVolume creates a volume with the given driver, options and labels.
func (d *Docker) CreateVolume(ctx context.Context, v engine.VolumeInfo) error {
	_, err := d.api.VolumeCreate(ctx, volume.CreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.Options, Labels: v.Labels})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", v.Name, err)
	}
	return nil
}

// ImageDigests returns the repo digests of an image ID ("" list when the
// image was built locally and never pushed or pulled).
func (d *Docker) ImageDigests(ctx context.Context, id string) ([]string, error) {
	ii, err := d.api.ImageInspect(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	return ii.RepoDigests, nil
}

// HelperImage makes sure the helper image exists, importing it when
// needed. When this binary is static and the engine runs the same OS and
// architecture, the image holds the binary so helpers can run our own code
// (CanRun); otherwise it is empty and only serves never-started helpers.
func (d *Docker) HelperImage(ctx context.Context) (engine.HelperImage, error) {
	content, canRun, reason, err := d.helperSupport(ctx)
	if err != nil {
		return engine.HelperImage{}, err
	}
	tag := d.version + "-empty"
	if canRun {
		tag = d.version + "-" + content.digest
	}
	ref := helperRepo + ":" + tag
	if _, err := d.api.ImageInspect(ctx, ref); err == nil {
		return engine.HelperImage{Ref: ref, CanRun: canRun, Reason: reason}, nil
	} else if !errdefs.IsNotFound(err) {
		return engine.HelperImage{}, fmt.Errorf("inspect helper image %s: %w", ref, err)
	}
	var tarball []byte
	changes := []string{"LABEL " + engine.LabelHelper + "=true", "LABEL " + engine.LabelInstallation + "=" + installation()}
	if canRun {
		if tarball, err = content.tarball(); err != nil {
			return engine.HelperImage{}, err
		}
		if content.libPath != "" {
			changes = append(changes, "ENV LD_LIBRARY_PATH="+content.libPath)
		}
	} else {
		// An empty layer: enough for never-started helpers.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		_ = tw.Close()
		tarball = buf.Bytes()
	}
	rc, err := d.api.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(tarball), SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		return engine.HelperImage{}, fmt.Errorf("import helper image %s: %w", ref, err)
	}
	_, _ = io.Copy(io.Discard, rc)
	_ = rc.Close()
	return engine.HelperImage{Ref: ref, CanRun: canRun, Reason: reason}, nil
}

// ProbeHelper says whether helpers could run our binary on this engine,
// without importing anything (for dry runs).
func (d *Docker) ProbeHelper(ctx context.Context) (engine.HelperImage, error) {
	_, canRun, reason, err := d.helperSupport(ctx)
	return engine.HelperImage{CanRun: canRun, Reason: reason}, err
}

func (d *Docker) helperSupport(ctx context.Context) (content *helperContent, canRun bool, reason string, err error) {
	content, contentErr := helperImageContent()
	if contentErr != nil {
		return nil, false, contentErr.Error(), nil
	}
	sv, err := d.api.ServerVersion(ctx)
	if err != nil {
		return nil, false, "", fmt.Errorf("ask the engine for its version: %w", err)
	}
	if sv.Os != runtime.GOOS || sv.Arch != runtime.GOARCH {
		return nil, false, fmt.Sprintf("the engine runs %s/%s, this binary is %s/%s", sv.Os, sv.Arch, runtime.GOOS, runtime.GOARCH), nil
	}
	return content, true, "", nil
}

// installation identifies this installation of the plugin (the host and
// the binary's path) on the helper images it imports, so that `clean`
// removes only the images this installation made obsolete, never those of
// another installation or daemon sharing the engine.
func installation() string {
	exe, _ := os.Executable()
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + exe))
	return hex.EncodeToString(sum[:8])
}

// CreateHelper creates (does not start) a helper container: no network,
// no logs kept, labelled as ours.
func (d *Docker) CreateHelper(ctx context.Context, spec engine.HelperSpec) (string, error) {
	var mounts []mount.Mount
	for _, m := range spec.Mounts {
		mounts = append(mounts, mount.Mount{
			Type: mount.TypeVolume, Source: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true},
		})
	}
	for _, b := range spec.Binds {
		mounts = append(mounts, mount.Mount{
			Type: mount.TypeBind, Source: b.Source, Target: b.Target, ReadOnly: b.ReadOnly,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		})
	}
	cmd := spec.Cmd
	if len(cmd) == 0 {
		cmd = []string{helperBinary} // never run: CopyFrom/CopyTo only
	}
	labels := map[string]string{engine.LabelHelper: "true", engine.LabelProject: spec.Project}
	logType := "none"
	if spec.KeepLogs {
		logType = "json-file"
	}
	// The engine may create the container even when the request is
	// cancelled half-way, and then nobody knows its ID to remove it: a
	// helper left holding the volume. So the create itself runs to its end
	// (bounded), and a cancelled caller gets the helper removed instead.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), helperCreateTimeout)
	defer cancel()
	resp, err := d.api.ContainerCreate(cctx, &container.Config{
		Image:           spec.Image,
		Cmd:             cmd,
		Labels:          labels,
		NetworkDisabled: true,
		WorkingDir:      "/",
	}, &container.HostConfig{
		NetworkMode: "none",
		Mounts:      mounts,
		LogConfig:   container.LogConfig{Type: logType},
	}, nil, nil, "")
	if err != nil {
		return "", fmt.Errorf("create helper container: %w", err)
	}
	if ctx.Err() != nil {
		_ = d.RemoveHelper(cctx, resp.ID)
		return "", fmt.Errorf("create helper container: %w", context.Cause(ctx))
	}
	return resp.ID, nil
}

// CopyFrom streams path out of a container as a tar archive.
func (d *Docker) CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	rc, _, err := d.api.CopyFromContainer(ctx, id, path)
	if err != nil {
		return nil, notFound(err)
	}
	return rc, nil
}

// CopyTo extracts a tar stream into path inside a container, keeping the
// numeric owners recorded in the archive.
func (d *Docker) CopyTo(ctx context.Context, id, path string, r io.Reader) error {
	return notFound(d.api.CopyToContainer(ctx, id, path, r, container.CopyToContainerOptions{}))
}

// RunHelper starts a created helper, waits for it to exit and returns its
// exit code and the tail of its output.
func (d *Docker) RunHelper(ctx context.Context, id string) (int, string, error) {
	waitC, errC := d.api.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err := d.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return -1, "", fmt.Errorf("start helper: %w", err)
	}
	var code int
	select {
	case res := <-waitC:
		code = int(res.StatusCode)
	case err := <-errC:
		return -1, "", fmt.Errorf("wait for helper: %w", err)
	}
	out := ""
	if rc, err := d.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"}); err == nil {
		var buf bytes.Buffer
		_, _ = stdcopy.StdCopy(&buf, &buf, rc)
		_ = rc.Close()
		out = strings.TrimSpace(buf.String())
	}
	return code, out, nil
}

// RemoveHelper force-removes a helper container and its anonymous
// volumes; an already removed one is not an error.
func (d *Docker) RemoveHelper(ctx context.Context, id string) error {
	err := d.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove helper container %s: %w", shortID(id), err)
	}
	return nil
}

// Helpers lists helper containers we left behind (for clean).
func (d *Docker) Helpers(ctx context.Context) ([]string, error) {
	list, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", engine.LabelHelper+"=true"))})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Exec runs a command in a running container, like `docker exec`, and
// returns its exit code and the last 2 kB of its output.
func (d *Docker) Exec(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
	created, err := d.api.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: spec.Cmd, User: spec.User, Privileged: spec.Privileged, WorkingDir: spec.WorkingDir, Env: spec.Env,
		AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, "", notFound(err)
	}
	att, err := d.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, "", err
	}
	defer att.Close()
	tail := &tailBuffer{max: 2048}
	var stdout io.Writer = tail
	if spec.Output != nil {
		stdout = spec.Output
	}
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, tail, att.Reader)
		done <- err
	}()
	select {
	case <-ctx.Done():
		// Nothing may reach spec.Output once Exec returned.
		att.Close()
		<-done
		return -1, tail.String(), ctx.Err()
	case err := <-done:
		if err != nil {
			return -1, tail.String(), err
		}
	}
	ins, err := d.api.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return -1, tail.String(), err
	}
	return ins.ExitCode, tail.String(), nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.buf)) }

// CleanProject removes the helper containers and staging volumes labelled
// as ours for project, and returns what it removed.
func (d *Docker) CleanProject(ctx context.Context, project string) ([]string, error) {
	var removed []string
	list, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelHelper+"=true"), filters.Arg("label", engine.LabelProject+"="+project))})
	if err != nil {
		return nil, fmt.Errorf("list helper containers: %w", err)
	}
	for _, c := range list {
		if err := d.RemoveHelper(ctx, c.ID); err != nil {
			return removed, err
		}
		removed = append(removed, "helper container "+shortID(c.ID))
	}
	vols, err := d.api.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelStaging+"=true"), filters.Arg("label", engine.LabelProject+"="+project))})
	if err != nil {
		return removed, fmt.Errorf("list staging volumes: %w", err)
	}
	for _, v := range vols.Volumes {
		if err := d.api.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("remove staging volume %s: %w", v.Name, err)
		}
		removed = append(removed, "staging volume "+v.Name)
	}
	return removed, nil
}

// CollectStaging removes staging volumes, of any project, whose source
// volume no longer exists (`docker compose down -v` removed it): the copy
// of data nobody keeps any more only takes disk. A staging volume in use
// is left alone. It returns the removed volumes' names.
func (d *Docker) CollectStaging(ctx context.Context) ([]string, error) {
	vols, err := d.api.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", engine.LabelStaging+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("list staging volumes: %w", err)
	}
	var removed []string
	var errs []error
	for _, v := range vols.Volumes {
		src := v.Labels[engine.LabelStagingSource]
		if src == "" {
			continue
		}
		if _, err := d.api.VolumeInspect(ctx, src); err == nil || !errdefs.IsNotFound(err) {
			continue
		}
		if err := d.api.VolumeRemove(ctx, v.Name, false); err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("remove staging volume %s: %w", v.Name, err))
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}

// CleanHelperImages removes the helper images this installation imported
// for earlier plugin builds (all but keep), and returns their references.
// Images of other installations sharing the engine (another host's plugin,
// a daemon of another version), images without the installation label and
// images a container still uses are left alone.
func (d *Docker) CleanHelperImages(ctx context.Context, keep string) ([]string, error) {
	list, err := d.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", engine.LabelHelper+"=true"), filters.Arg("label", engine.LabelInstallation+"="+installation()))})
	if err != nil {
		return nil, fmt.Errorf("list helper images: %w", err)
	}
	var removed []string
	for _, img := range list {
		if slices.Contains(img.RepoTags, keep) {
			continue
		}
		if users, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("ancestor", img.ID))}); err != nil || len(users) > 0 {
			continue
		}
		if _, err := d.api.ImageRemove(ctx, img.ID, image.RemoveOptions{PruneChildren: true}); err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue // in use, or gone meanwhile
			}
			return removed, fmt.Errorf("remove helper image %s: %w", shortID(img.ID), err)
		}
		name := shortID(strings.TrimPrefix(img.ID, "sha256:"))
		if len(img.RepoTags) > 0 {
			name = img.RepoTags[0]
		}
		removed = append(removed, "helper image "+name)
	}
	return removed, nil
}
