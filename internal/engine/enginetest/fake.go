package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
)

// Call is one engine call as the fake saw it. Stops are recorded twice:
// "stop" when the call begins and "stopped" when it returns.
type Call struct {
	// Op is one of "containers", "volume-users", "stop", "stopped",
	// "start", "inspect", "volume", "create-volume", "image-digests",
	// "helper-image", "probe-helper", "create-helper", "copy-from",
	// "copy-to", "run-helper", "remove-helper", "exec", "helpers",
	// "clean-project", "collect-staging", "clean-helper-images".
	Op     string
	ID     string // container or helper ID, or volume name
	Detail string
	Time   time.Time
}

func (c Call) String() string { return c.Op + " " + c.ID }

// Container is one simulated container. Its behaviour is scripted by the
// fields below; the zero value stops at once, starts cleanly and has no
// healthcheck.
type Container struct {
	engine.Container
	// Volumes the container mounts, for VolumeUsers. A container whose
	// Project is set to another project is not listed by Containers.
	Volumes []string
	// StopDelay is how long the container takes to exit; the fake kills
	// it (exit code 137) when the stop timeout is shorter.
	StopDelay time.Duration
	// Health is what the healthcheck settles on after a start: "" for no
	// healthcheck, "healthy", "unhealthy", or "starting" for never.
	Health string
	// HealthyAfter is how many inspects after a start report "starting"
	// before Health is reached.
	HealthyAfter int
	// ExitAfter, when > 0, makes the container exit with ExitCode on the
	// ExitAfter-th inspect after a start.
	ExitAfter int
	ExitCode  int

	status   engine.Status
	inspects int // since the last start
}

// File is one entry of a simulated volume.
type File struct {
	Name    string
	Type    byte // tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink
	Mode    int64
	Content string
	Link    string
}

// Exec is one Exec call as the fake saw it.
type Exec struct {
	Container string
	Spec      engine.ExecSpec
}

// CopyTo is one CopyTo call as the fake saw it: the tar stream it received.
type CopyTo struct {
	Helper, Volume, Path string
	Tar                  []byte
}

// Fake is an engine.Engine over simulated containers, volumes and
// helpers. Every call is recorded; the …Fn fields, when set, replace the
// simulated behaviour of one method (the call is still recorded; the
// Default… methods are the simulated behaviour, to fall back on).
//
// Helpers run this program's helper commands on the simulated volumes
// (see helpercmd.go). Set the fields before the first call.
type Fake struct {
	// Free is the free space the helper's space probe reports; 0 means
	// plenty.
	Free int64
	// Shared makes the engine accept bind mounts of the plugin's folders,
	// as a local engine does; without it the engine refuses them, as a
	// remote one does. Foreign makes the helper see other files there (a
	// remote engine that happens to have the same path).
	Shared, Foreign bool

	ContainersFn   func(ctx context.Context, project string) ([]engine.Container, error)
	StopFn         func(ctx context.Context, id string, timeout time.Duration) error
	StartFn        func(ctx context.Context, id string) error
	InspectFn      func(ctx context.Context, id string) (engine.Status, error)
	VolumeFn       func(ctx context.Context, name string) (engine.VolumeInfo, error)
	CreateVolumeFn func(ctx context.Context, v engine.VolumeInfo) error
	HelperImageFn  func(ctx context.Context) (engine.HelperImage, error)
	CreateHelperFn func(ctx context.Context, spec engine.HelperSpec) (string, error)
	CopyFromFn     func(ctx context.Context, id, path string) (io.ReadCloser, error)
	CopyToFn       func(ctx context.Context, id, path string, r io.Reader) error
	RunHelperFn    func(ctx context.Context, id string) (int, string, error)
	ExecFn         func(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error)

	mu         sync.Mutex
	calls      []Call
	containers []*Container
	timeouts   map[string]time.Duration // last stop timeout per container
	volumes    map[string]engine.VolumeInfo
	files      map[string][]File // contents per volume name
	helpers    map[string]engine.HelperSpec
	specs      []engine.HelperSpec // every helper created, in order
	nextHelper int
	execs      []Exec
	copies     []CopyTo
	created    []engine.VolumeInfo
	unpacked   []string // volumes written by a direct restore
}

var _ engine.Engine = (*Fake)(nil)

// New returns a fake engine with the given containers, each in the state
// its Container.State names.
func New(cs ...*Container) *Fake {
	f := &Fake{
		timeouts: map[string]time.Duration{},
		volumes:  map[string]engine.VolumeInfo{},
		files:    map[string][]File{},
		helpers:  map[string]engine.HelperSpec{},
	}
	for _, c := range cs {
		f.AddContainer(c)
	}
	return f
}

// AddContainer adds c in the state c.State names; a running container
// with a healthcheck starts out healthy (Health is what it reaches after
// its next start).
func (f *Fake) AddContainer(c *Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.status = engine.Status{State: c.State, HasHealthcheck: c.Health != ""}
	if c.State == "running" && c.Health != "" {
		c.status.Health = "healthy"
	}
	f.containers = append(f.containers, c)
}

// Update runs fn on container id with the fake locked (to change its
// script or its state mid-test). It panics when there is no such
// container: a test mistake.
func (f *Fake) Update(id string, fn func(c *Container)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		panic("enginetest: no container " + id)
	}
	fn(c)
}

// SetState sets container id's runtime state, as if it changed on its own
// (it crashed, someone started it).
func (f *Fake) SetState(id, state string) {
	f.Update(id, func(c *Container) { c.status.State = state })
}

// SetStatus sets container id's whole runtime status.
func (f *Fake) SetStatus(id string, st engine.Status) {
	f.Update(id, func(c *Container) { c.status = st })
}

// AddVolume makes a volume exist on the engine with the given contents.
func (f *Fake) AddVolume(v engine.VolumeInfo, files ...File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[v.Name] = v
	f.files[v.Name] = files
}

// RemoveVolume removes a volume and its contents.
func (f *Fake) RemoveVolume(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, name)
	delete(f.files, name)
}

// Files returns the contents of a volume.
func (f *Fake) Files(volume string) []File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.files[volume])
}

// SetFiles replaces the contents of a volume.
func (f *Fake) SetFiles(volume string, files []File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[volume] = files
}

// Unpacked lists the volumes written by a helper's unpack (a restore on
// the direct path), in order.
func (f *Fake) Unpacked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unpacked)
}

func (f *Fake) find(id string) *Container {
	for _, c := range f.containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (f *Fake) record(op, id, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: op, ID: id, Detail: detail, Time: time.Now()})
}

// Calls returns a copy of the call log.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the calls so far (e.g. those of the backup a restore
// test starts from).
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.specs, f.execs, f.copies, f.created = nil, nil, nil, nil, nil
	f.nextHelper = 0
}

// Ops lists, in order, the IDs of the calls with operation op.
func (f *Fake) Ops(op string) []string {
	var out []string
	for _, c := range f.Calls() {
		if c.Op == op {
			out = append(out, c.ID)
		}
	}
	return out
}

// Index returns the position of the first call op id in the log, -1 if
// none.
func (f *Fake) Index(op, id string) int {
	return slices.IndexFunc(f.Calls(), func(c Call) bool { return c.Op == op && c.ID == id })
}

// State returns the current state of container id, "" if there is none.
func (f *Fake) State(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(id); c != nil {
		return c.status.State
	}
	return ""
}

// StopTimeout is the timeout of the last stop of container id.
func (f *Fake) StopTimeout(id string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts[id]
}

// LiveHelpers lists the helpers created and not removed.
func (f *Fake) LiveHelpers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.helpers)
}

// HelperSpecs lists every helper created, in order.
func (f *Fake) HelperSpecs() []engine.HelperSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.specs)
}

// Execs lists every Exec call, in order.
func (f *Fake) Execs() []Exec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

// CopyTos lists every CopyTo call, in order.
func (f *Fake) CopyTos() []CopyTo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.copies)
}

// CreatedVolumes lists the volumes CreateVolume made, in order.
func (f *Fake) CreatedVolumes() []engine.VolumeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created)
}

// --- containers ---

func (f *Fake) Containers(ctx context.Context, project string) ([]engine.Container, error) {
	f.record("containers", "", project)
	if f.ContainersFn != nil {
		return f.ContainersFn(ctx, project)
	}
	return f.DefaultContainers(ctx, project)
}

// DefaultContainers is the simulated Containers.
func (f *Fake) DefaultContainers(ctx context.Context, project string) ([]engine.Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.Container, 0, len(f.containers))
	for _, c := range f.containers {
		cc := c.Container
		if cc.Project != "" && cc.Project != project {
			continue
		}
		cc.State = c.status.State
		out = append(out, cc)
	}
	return out, nil
}

func (f *Fake) VolumeUsers(ctx context.Context, volume string) ([]engine.Container, error) {
	f.record("volume-users", volume, "")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Container
	for _, c := range f.containers {
		if slices.Contains(c.Volumes, volume) {
			cc := c.Container
			cc.State = c.status.State
			out = append(out, cc)
		}
	}
	for id, spec := range f.helpers {
		for _, m := range spec.Mounts {
			if m.Volume == volume {
				out = append(out, engine.Container{ID: id, Name: id, Project: spec.Project, Helper: true, State: "created"})
			}
		}
	}
	return out, nil
}

func (f *Fake) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	f.record("stop", id, timeout.String())
	defer f.record("stopped", id, "")
	f.mu.Lock()
	f.timeouts[id] = timeout
	f.mu.Unlock()
	if f.StopFn != nil {
		return f.StopFn(ctx, id, timeout)
	}
	return f.DefaultStop(ctx, id, timeout)
}

// DefaultStop is the simulated stop: StopDelay, then exited (killed with
// 137 when the timeout is shorter).
func (f *Fake) DefaultStop(ctx context.Context, id string, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	c := f.find(id)
	if c == nil {
		f.mu.Unlock()
		return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	delay, code := c.StopDelay, 0
	f.mu.Unlock()
	if delay > timeout {
		delay, code = timeout, 137
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.status.State == "running" || c.status.State == "restarting" {
		c.status = engine.Status{State: "exited", ExitCode: code, HasHealthcheck: c.status.HasHealthcheck}
	}
	return nil
}

func (f *Fake) StartContainer(ctx context.Context, id string) error {
	f.record("start", id, "")
	if f.StartFn != nil {
		return f.StartFn(ctx, id)
	}
	return f.DefaultStart(ctx, id)
}

// DefaultStart is the simulated start: running, its healthcheck (if any)
// starting.
func (f *Fake) DefaultStart(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, helper := f.helpers[id]; helper {
		return nil // a serving helper
	}
	c := f.find(id)
	if c == nil {
		return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	if c.status.State == "running" {
		return nil
	}
	c.inspects = 0
	c.status = engine.Status{State: "running", HasHealthcheck: c.Health != ""}
	if c.Health != "" {
		c.status.Health = "starting"
	}
	return nil
}

func (f *Fake) InspectContainer(ctx context.Context, id string) (engine.Status, error) {
	var st engine.Status
	var err error
	if f.InspectFn != nil {
		st, err = f.InspectFn(ctx, id)
	} else {
		st, err = f.DefaultInspect(ctx, id)
	}
	detail := st.State
	if st.State == "exited" {
		detail += fmt.Sprintf("/%d", st.ExitCode)
	} else if st.Health != "" {
		detail += "/" + st.Health
	}
	if err != nil {
		detail = "error: " + err.Error()
	}
	f.record("inspect", id, detail)
	return st, err
}

// DefaultInspect is the simulated inspect: each one after a start moves
// the scripted health and exit along.
func (f *Fake) DefaultInspect(ctx context.Context, id string) (engine.Status, error) {
	if err := ctx.Err(); err != nil {
		return engine.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return engine.Status{}, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
	}
	if c.status.State == "running" {
		c.inspects++
		switch {
		case c.ExitAfter > 0 && c.inspects >= c.ExitAfter:
			c.status = engine.Status{State: "exited", ExitCode: c.ExitCode, HasHealthcheck: c.status.HasHealthcheck}
		case c.Health != "" && c.status.Health == "starting" && c.inspects > c.HealthyAfter:
			c.status.Health = c.Health
			if c.Health == "unhealthy" {
				c.status.HealthLog = "probe failed"
			}
		}
	}
	return c.status, nil
}

// --- volumes and images ---

func (f *Fake) Volume(ctx context.Context, name string) (engine.VolumeInfo, error) {
	f.record("volume", name, "")
	if f.VolumeFn != nil {
		return f.VolumeFn(ctx, name)
	}
	return f.DefaultVolume(ctx, name)
}

// DefaultVolume is the simulated volume inspect.
func (f *Fake) DefaultVolume(ctx context.Context, name string) (engine.VolumeInfo, error) {
	if err := ctx.Err(); err != nil {
		return engine.VolumeInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return engine.VolumeInfo{}, fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
	}
	return v, nil
}

func (f *Fake) CreateVolume(ctx context.Context, v engine.VolumeInfo) error {
	f.record("create-volume", v.Name, v.Driver)
	if f.CreateVolumeFn != nil {
		return f.CreateVolumeFn(ctx, v)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[v.Name]; ok {
		return fmt.Errorf("volume %s already exists", v.Name)
	}
	if v.Driver == "" {
		v.Driver = "local"
	}
	f.created = append(f.created, v)
	f.volumes[v.Name] = v
	f.files[v.Name] = nil
	return nil
}

func (f *Fake) ImageDigests(ctx context.Context, imageID string) ([]string, error) {
	f.record("image-digests", imageID, "")
	return []string{"registry.example/" + strings.TrimPrefix(imageID, "sha256:") + "@sha256:0123"}, nil
}

// HelperRef is the reference of the fake's helper image.
const HelperRef = "autobackup-helper:test"

func (f *Fake) HelperImage(ctx context.Context) (engine.HelperImage, error) {
	f.record("helper-image", "", "")
	if f.HelperImageFn != nil {
		return f.HelperImageFn(ctx)
	}
	return engine.HelperImage{Ref: HelperRef, CanRun: true}, nil
}

func (f *Fake) ProbeHelper(ctx context.Context) (engine.HelperImage, error) {
	f.record("probe-helper", "", "")
	if f.HelperImageFn != nil {
		img, err := f.HelperImageFn(ctx)
		img.Ref = ""
		return img, err
	}
	return engine.HelperImage{CanRun: true}, nil
}

// --- helpers ---

func (f *Fake) CreateHelper(ctx context.Context, spec engine.HelperSpec) (string, error) {
	var vols []string
	for _, m := range spec.Mounts {
		vols = append(vols, m.Volume)
	}
	f.record("create-helper", strings.Join(vols, ","), strings.Join(spec.Cmd, " "))
	if f.CreateHelperFn != nil {
		return f.CreateHelperFn(ctx, spec)
	}
	return f.DefaultCreateHelper(ctx, spec)
}

// DefaultCreateHelper is the simulated create: like the engine, mounting a
// missing volume creates it, empty; a bind mount is refused unless Shared.
func (f *Fake) DefaultCreateHelper(ctx context.Context, spec engine.HelperSpec) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(spec.Binds) > 0 && !f.Shared {
		//lint:ignore ST1005 the engine's own wording
		return "", fmt.Errorf("Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: %s", spec.Binds[0].Source)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range spec.Mounts {
		if _, ok := f.volumes[m.Volume]; !ok {
			f.volumes[m.Volume] = engine.VolumeInfo{Name: m.Volume, Driver: "local"}
			f.files[m.Volume] = nil
		}
	}
	f.nextHelper++
	id := fmt.Sprintf("helper-%d", f.nextHelper)
	f.helpers[id] = spec
	f.specs = append(f.specs, spec)
	return id, nil
}

// mounted returns the volume mounted at target in helper id.
func (f *Fake) mounted(id, target string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spec, ok := f.helpers[id]
	if !ok {
		return "", fmt.Errorf("helper %s: %w", id, engine.ErrNotFound)
	}
	for _, m := range spec.Mounts {
		if m.Target == target {
			return m.Volume, nil
		}
	}
	return "", fmt.Errorf("helper %s has nothing mounted at %s", id, target)
}

func (f *Fake) CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	f.record("copy-from", id, path)
	if f.CopyFromFn != nil {
		return f.CopyFromFn(ctx, id, path)
	}
	return f.DefaultCopyFrom(ctx, id, path)
}

// DefaultCopyFrom is the simulated copy: "<mount>/." of a helper gives the
// tar of the volume mounted there (a staging volume's copy is under
// /s/data).
func (f *Fake) DefaultCopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	target, ok := strings.CutSuffix(path, "/.")
	if !ok {
		return nil, fmt.Errorf("copy from %s: unexpected path %q", id, path)
	}
	if target == "/s/data" {
		target = "/s"
	}
	vol, err := f.mounted(id, target)
	if err != nil {
		return nil, err
	}
	data, err := BuildTar(f.Files(vol))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *Fake) CopyTo(ctx context.Context, id, path string, r io.Reader) error {
	f.record("copy-to", id, path)
	if f.CopyToFn != nil {
		return f.CopyToFn(ctx, id, path, r)
	}
	return f.DefaultCopyTo(ctx, id, path, r)
}

// DefaultCopyTo is the simulated extraction: into the volume mounted at
// path; at "/", entries named "<mount>/..." land in the volume mounted at
// /<mount>, as with the engine.
func (f *Fake) DefaultCopyTo(ctx context.Context, id, path string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if path == "/" {
		if path, data, err = unroot(data); err != nil {
			return err
		}
	}
	vol, err := f.mounted(id, path)
	if err != nil {
		return err
	}
	files, err := ReadTar(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.copies = append(f.copies, CopyTo{Helper: id, Volume: vol, Path: path, Tar: data})
	f.files[vol] = append(f.files[vol], files...)
	return nil
}

func (f *Fake) RunHelper(ctx context.Context, id string) (int, string, error) {
	f.mu.Lock()
	spec := f.helpers[id]
	f.mu.Unlock()
	f.record("run-helper", id, strings.Join(spec.Cmd, " "))
	if f.RunHelperFn != nil {
		return f.RunHelperFn(ctx, id)
	}
	return f.DefaultRunHelper(ctx, id)
}

// DefaultRunHelper runs the helper's command on the fake's volumes; the
// output is the container's log: both streams.
func (f *Fake) DefaultRunHelper(ctx context.Context, id string) (int, string, error) {
	if err := ctx.Err(); err != nil {
		return -1, "", err
	}
	f.mu.Lock()
	spec, ok := f.helpers[id]
	f.mu.Unlock()
	if !ok {
		return -1, "", fmt.Errorf("helper %s: %w", id, engine.ErrNotFound)
	}
	var out strings.Builder
	code, err := f.helperCommand(id, spec.Cmd, &out, &out)
	return code, strings.TrimSpace(out.String()), err
}

func (f *Fake) Exec(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
	f.record("exec", id, strings.Join(spec.Cmd, " "))
	f.mu.Lock()
	f.execs = append(f.execs, Exec{Container: id, Spec: spec})
	f.mu.Unlock()
	if f.ExecFn != nil {
		return f.ExecFn(ctx, id, spec)
	}
	return f.DefaultExec(ctx, id, spec)
}

// DefaultExec is what Exec does without ExecFn: a helper runs the helper
// command; a running service container succeeds. Like the engine, stdout
// goes to spec.Output when set, and only the rest into the returned
// output.
func (f *Fake) DefaultExec(ctx context.Context, id string, spec engine.ExecSpec) (int, string, error) {
	if err := ctx.Err(); err != nil {
		return -1, "", err
	}
	f.mu.Lock()
	_, helper := f.helpers[id]
	running := false
	if c := f.find(id); c != nil {
		running = c.status.State == "running"
	}
	f.mu.Unlock()
	if !helper {
		if !running {
			//lint:ignore ST1005 the engine's own wording
			return -1, "", fmt.Errorf("Error response from daemon: container %s is not running", id)
		}
		return 0, "", nil
	}
	var stdout, stderr strings.Builder
	var out io.Writer = &stdout
	if spec.Output != nil {
		out = spec.Output
	}
	code, err := f.helperCommand(id, spec.Cmd, out, &stderr)
	return code, strings.TrimSpace(stdout.String() + stderr.String()), err
}

func (f *Fake) RemoveHelper(ctx context.Context, id string) error {
	f.record("remove-helper", id, "")
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.helpers, id)
	return nil
}

// IsServing reports whether helper id serves execs (a staging helper).
func (f *Fake) IsServing(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := f.helpers[id].Cmd
	req, err := protocol.Decode(cmd[min(2, len(cmd)):])
	if err != nil {
		return false
	}
	_, serve := req.(*protocol.Serve)
	return serve
}

// --- housekeeping ---

func (f *Fake) Helpers(ctx context.Context) ([]string, error) {
	f.record("helpers", "", "")
	return f.LiveHelpers(), ctx.Err()
}

func (f *Fake) CleanProject(ctx context.Context, project string) ([]string, error) {
	f.record("clean-project", project, "")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var removed []string
	for _, id := range sortedKeys(f.helpers) {
		if f.helpers[id].Project == project {
			delete(f.helpers, id)
			removed = append(removed, "helper container "+id)
		}
	}
	for _, name := range sortedKeys(f.volumes) {
		l := f.volumes[name].Labels
		if l[engine.LabelStaging] == "true" && l[engine.LabelProject] == project {
			delete(f.volumes, name)
			delete(f.files, name)
			removed = append(removed, "staging volume "+name)
		}
	}
	return removed, nil
}

func (f *Fake) CollectStaging(ctx context.Context) ([]string, error) {
	f.record("collect-staging", "", "")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var removed []string
	for _, name := range sortedKeys(f.volumes) {
		l := f.volumes[name].Labels
		src := l[engine.LabelStagingSource]
		if l[engine.LabelStaging] != "true" || src == "" {
			continue
		}
		if _, ok := f.volumes[src]; ok || f.inUse(name) {
			continue
		}
		delete(f.volumes, name)
		delete(f.files, name)
		removed = append(removed, name)
	}
	return removed, nil
}

// inUse reports whether a helper mounts the volume; f.mu is held.
func (f *Fake) inUse(volume string) bool {
	for _, spec := range f.helpers {
		for _, m := range spec.Mounts {
			if m.Volume == volume {
				return true
			}
		}
	}
	return false
}

func (f *Fake) CleanHelperImages(ctx context.Context, keep string) ([]string, error) {
	f.record("clean-helper-images", keep, "")
	return nil, ctx.Err()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
