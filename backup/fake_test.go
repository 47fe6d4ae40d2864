package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/backup"
	"github.com/docker-autobackup/docker-autobackup/compose"
	"github.com/docker-autobackup/docker-autobackup/helper"
	"github.com/docker-autobackup/docker-autobackup/helper/protocol"
)

// call is one engine call as the fake saw it. Stops are recorded twice:
// "stop" when the call begins and "stopped" when it returns.
type call struct {
	Op     string // "containers", "stop", "stopped", "start", "inspect", "volume", "create-volume", "image-digests", "helper-image", "create-helper", "copy-from", "copy-to", "run-helper", "remove-helper", "exec"
	ID     string // container or helper ID, or volume name
	Detail string
}

func (c call) String() string { return c.Op + " " + c.ID }

// fakeContainer is one simulated project container. The zero value stops
// at once and starts cleanly, without a healthcheck.
type fakeContainer struct {
	compose.Container
	// Volumes the container mounts, for VolumeUsers. A container whose
	// Project is set to another project is not listed by Containers.
	Volumes []string

	// ExitAfter, when > 0, makes the container exit with ExitCode on the
	// ExitAfter-th inspect after a start.
	ExitAfter int
	ExitCode  int

	status   compose.Status
	inspects int
}

// file is one entry of a simulated volume.
type file struct {
	Name    string
	Type    byte // tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	Mode    int64
	Content string
	Link    string
}

// execCall is one Exec as the fake saw it.
type execCall struct {
	Container string
	Spec      backup.ExecSpec
}

// copyTo is one CopyTo as the fake saw it: the tar stream it received.
type copyTo struct {
	Helper, Volume, Path string
	Tar                  []byte
}

// fakeEngine is a backup.Engine over simulated containers, volumes and
// helpers. Every call is recorded; the …Fn fields, when set, replace the
// simulated behaviour of one method (the call is still recorded).
type fakeEngine struct {
	free int64 // free bytes the "space" helper reports; 0 means plenty
	// shared makes the engine accept bind mounts of the plugin's folders,
	// as a local engine does; without it the engine refuses them, as a
	// remote one does. foreign makes the helper see other files there (a
	// remote engine that happens to have the same path).
	shared, foreign bool
	ContainersFn    func(ctx context.Context, project string) ([]compose.Container, error)
	StopFn          func(ctx context.Context, id string, timeout time.Duration) error
	VolumeFn        func(ctx context.Context, name string) (backup.VolumeInfo, error)
	CreateVolumeFn  func(ctx context.Context, v backup.VolumeInfo) error
	HelperImageFn   func(ctx context.Context) (backup.HelperImage, error)
	CreateHelperFn  func(ctx context.Context, spec backup.HelperSpec) (string, error)
	CopyFromFn      func(ctx context.Context, id, path string) (io.ReadCloser, error)
	CopyToFn        func(ctx context.Context, id, path string, r io.Reader) error
	RunHelperFn     func(ctx context.Context, id string) (int, string, error)
	ExecFn          func(ctx context.Context, id string, spec backup.ExecSpec) (int, string, error)

	mu         sync.Mutex
	calls      []call
	containers []*fakeContainer
	volumes    map[string]backup.VolumeInfo
	files      map[string][]file // contents per volume name
	helpers    map[string]backup.HelperSpec
	specs      []backup.HelperSpec // every helper created, in order
	nextHelper int
	nextVolume int
	execs      []execCall
	copies     []copyTo
	created    []backup.VolumeInfo
	unpacked   []string // volumes written by a direct restore
}

var _ backup.Engine = (*fakeEngine)(nil)

func newFakeEngine(cs ...*fakeContainer) *fakeEngine {
	f := &fakeEngine{
		volumes: map[string]backup.VolumeInfo{},
		files:   map[string][]file{},
		helpers: map[string]backup.HelperSpec{},
	}
	for _, c := range cs {
		c.status = compose.Status{State: c.State}
		f.containers = append(f.containers, c)
	}
	return f
}

// ctr returns a container of service svc in project p, number 1, in state.
func ctr(svc, state string) *fakeContainer {
	id := svc + "-1"
	return &fakeContainer{Container: compose.Container{
		ID: id, Name: "p-" + id, Service: svc, Number: 1, State: state,
		Image: svc + ":latest", ImageID: "sha256:" + svc,
	}}
}

// addVolume makes a volume exist on the engine with the given contents.
func (f *fakeEngine) addVolume(v backup.VolumeInfo, files ...file) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putVolume(v)
	f.files[v.Name] = files
}

// putVolume stores v; f.mu is held.
func (f *fakeEngine) putVolume(v backup.VolumeInfo) {
	f.nextVolume++
	f.volumes[v.Name] = v
}

func (f *fakeEngine) removeVolume(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, name)
	delete(f.files, name)
}

func (f *fakeEngine) find(id string) *fakeContainer {
	for _, c := range f.containers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) record(op, id, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{Op: op, ID: id, Detail: detail})
}

// Calls returns a copy of the call log.
func (f *fakeEngine) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// resetCalls forgets the calls so far (e.g. those of the backup a restore
// test starts from).
func (f *fakeEngine) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.specs, f.execs, f.copies, f.created = nil, nil, nil, nil, nil
	f.nextHelper = 0
}

// ops lists, in order, the IDs of the calls with operation op.
func (f *fakeEngine) ops(op string) []string {
	var out []string
	for _, c := range f.Calls() {
		if c.Op == op {
			out = append(out, c.ID)
		}
	}
	return out
}

// index returns the position of the first call op id in the log, -1 if none.
func (f *fakeEngine) index(op, id string) int {
	return slices.IndexFunc(f.Calls(), func(c call) bool { return c.Op == op && c.ID == id })
}

// state returns the current state of container id.
func (f *fakeEngine) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(id); c != nil {
		return c.status.State
	}
	return ""
}

// liveHelpers lists the helpers created and not removed.
func (f *fakeEngine) liveHelpers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.helpers {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (f *fakeEngine) helperSpecs() []backup.HelperSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.specs)
}

func (f *fakeEngine) execCalls() []execCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.execs)
}

func (f *fakeEngine) copyTos() []copyTo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.copies)
}

func (f *fakeEngine) createdVolumes() []backup.VolumeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created)
}

// --- compose.Engine ---

func (f *fakeEngine) Containers(ctx context.Context, project string) ([]compose.Container, error) {
	f.record("containers", "", project)
	if f.ContainersFn != nil {
		return f.ContainersFn(ctx, project)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]compose.Container, 0, len(f.containers))
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

func (f *fakeEngine) VolumeUsers(ctx context.Context, volume string) ([]compose.Container, error) {
	f.record("volume-users", volume, "")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []compose.Container
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
				out = append(out, compose.Container{ID: id, Name: id, Project: spec.Project, Helper: true, State: "created"})
			}
		}
	}
	return out, nil
}

func (f *fakeEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	f.record("stop", id, timeout.String())
	defer f.record("stopped", id, "")
	if f.StopFn != nil {
		return f.StopFn(ctx, id, timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return fmt.Errorf("container %s: %w", id, compose.ErrNotFound)
	}
	if c.status.State == "running" {
		c.status = compose.Status{State: "exited"}
	}
	return nil
}

func (f *fakeEngine) StartContainer(ctx context.Context, id string) error {
	f.record("start", id, "")
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
		return fmt.Errorf("container %s: %w", id, compose.ErrNotFound)
	}
	if c.status.State != "running" {
		c.inspects = 0
		c.status = compose.Status{State: "running"}
	}
	return nil
}

func (f *fakeEngine) InspectContainer(ctx context.Context, id string) (compose.Status, error) {
	f.mu.Lock()
	c := f.find(id)
	var st compose.Status
	if c != nil && c.status.State == "running" {
		c.inspects++
		if c.ExitAfter > 0 && c.inspects >= c.ExitAfter {
			c.status = compose.Status{State: "exited", ExitCode: c.ExitCode}
		}
	}
	if c != nil {
		st = c.status
	}
	f.mu.Unlock()
	f.record("inspect", id, st.State)
	if c == nil {
		return st, fmt.Errorf("container %s: %w", id, compose.ErrNotFound)
	}
	return st, ctx.Err()
}

// --- backup.Engine ---

func (f *fakeEngine) Volume(ctx context.Context, name string) (backup.VolumeInfo, error) {
	f.record("volume", name, "")
	if f.VolumeFn != nil {
		return f.VolumeFn(ctx, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return backup.VolumeInfo{}, fmt.Errorf("volume %s: %w", name, compose.ErrNotFound)
	}
	return v, nil
}

func (f *fakeEngine) CreateVolume(ctx context.Context, v backup.VolumeInfo) error {
	f.record("create-volume", v.Name, v.Driver)
	if f.CreateVolumeFn != nil {
		return f.CreateVolumeFn(ctx, v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[v.Name]; ok {
		return fmt.Errorf("volume %s already exists", v.Name)
	}
	f.created = append(f.created, v)
	f.putVolume(v)
	f.files[v.Name] = nil
	return nil
}

func (f *fakeEngine) ImageDigests(ctx context.Context, imageID string) ([]string, error) {
	f.record("image-digests", imageID, "")
	return []string{"registry.example/" + strings.TrimPrefix(imageID, "sha256:") + "@sha256:0123"}, nil
}

func (f *fakeEngine) HelperImage(ctx context.Context) (backup.HelperImage, error) {
	f.record("helper-image", "", "")
	if f.HelperImageFn != nil {
		return f.HelperImageFn(ctx)
	}
	return backup.HelperImage{Ref: "autobackup-helper:test", CanRun: true}, nil
}

func (f *fakeEngine) CreateHelper(ctx context.Context, spec backup.HelperSpec) (string, error) {
	var vols []string
	for _, m := range spec.Mounts {
		vols = append(vols, m.Volume)
	}
	f.record("create-helper", strings.Join(vols, ","), strings.Join(spec.Cmd, " "))
	if f.CreateHelperFn != nil {
		return f.CreateHelperFn(ctx, spec)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(spec.Binds) > 0 && !f.shared {
		return "", fmt.Errorf("Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: %s", spec.Binds[0].Source)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Like the engine, mounting a missing volume creates it, empty.
	for _, m := range spec.Mounts {
		if _, ok := f.volumes[m.Volume]; !ok {
			f.putVolume(backup.VolumeInfo{Name: m.Volume, Driver: "local"})
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
func (f *fakeEngine) mounted(id, target string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spec, ok := f.helpers[id]
	if !ok {
		return "", fmt.Errorf("helper %s: %w", id, compose.ErrNotFound)
	}
	for _, m := range spec.Mounts {
		if m.Target == target {
			return m.Volume, nil
		}
	}
	return "", fmt.Errorf("helper %s has nothing mounted at %s", id, target)
}

func (f *fakeEngine) CopyFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	f.record("copy-from", id, path)
	if f.CopyFromFn != nil {
		return f.CopyFromFn(ctx, id, path)
	}
	target := map[string]string{"/v/.": "/v", "/s/data/.": "/s"}[path]
	if target == "" {
		return nil, fmt.Errorf("copy from %s: unexpected path %q", id, path)
	}
	vol, err := f.mounted(id, target)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	files := slices.Clone(f.files[vol])
	f.mu.Unlock()
	data, err := buildTar(files)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *fakeEngine) CopyTo(ctx context.Context, id, path string, r io.Reader) error {
	f.record("copy-to", id, path)
	if f.CopyToFn != nil {
		return f.CopyToFn(ctx, id, path, r)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if path == "/" {
		// Like the engine: entries named "<mount>/..." land in the
		// volume mounted at /<mount>. Record them as the volume sees them.
		if path, data, err = unroot(data); err != nil {
			return err
		}
	}
	vol, err := f.mounted(id, path)
	if err != nil {
		return err
	}
	files, err := readTar(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.copies = append(f.copies, copyTo{Helper: id, Volume: vol, Path: path, Tar: data})
	f.files[vol] = append(f.files[vol], files...)
	return nil
}

func (f *fakeEngine) RunHelper(ctx context.Context, id string) (int, string, error) {
	f.mu.Lock()
	spec := f.helpers[id]
	f.mu.Unlock()
	f.record("run-helper", id, strings.Join(spec.Cmd, " "))
	if f.RunHelperFn != nil {
		return f.RunHelperFn(ctx, id)
	}
	return f.runHelperDefault(ctx, id)
}

// runHelperDefault is what RunHelper does without RunHelperFn, for
// overrides that only change some calls.
func (f *fakeEngine) runHelperDefault(ctx context.Context, id string) (int, string, error) {
	f.mu.Lock()
	spec := f.helpers[id]
	f.mu.Unlock()
	var out strings.Builder // the container's log: both streams
	code, err := f.helperCommand(id, spec.Cmd, &out, &out)
	return code, strings.TrimSpace(out.String()), err
}

// helperCommand does what the helper binary's commands do, on the fake's
// volumes: run as the helper's command or exec'd into a serving helper.
// It decodes cmd and encodes the results as the helper does, through
// helper/protocol; what the helper writes on stdout goes to stdout, its
// complaints to stderr.
func (f *fakeEngine) helperCommand(id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	if len(cmd) < 2 || cmd[0] != protocol.Binary || cmd[1] != protocol.Arg {
		return 0, nil // not ours: succeeds, like a hook
	}
	req, err := protocol.Decode(cmd[2:])
	if err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		return 1, nil
	}
	switch r := req.(type) {
	case *protocol.Space:
		if _, err := f.mounted(id, r.Src); err != nil {
			return 1, err
		}
		if _, err := f.mounted(id, r.Stage); err != nil {
			return 1, err
		}
		return 0, protocol.WriteResult(stdout, protocol.SpaceResult{SrcBytes: 1000, FreeBytes: f.freeBytes()})
	case *protocol.Sync:
		// The staging volume holds the mirror: copy the source's files.
		src, err := f.mounted(id, r.Src)
		if err != nil {
			return 1, err
		}
		stage, err := f.mounted(id, path.Dir(r.Dst))
		if err != nil {
			return 1, err
		}
		f.mu.Lock()
		files := slices.Clone(f.files[src])
		f.files[stage] = files
		f.mu.Unlock()
		var n int64
		for _, e := range files {
			n += int64(len(e.Content))
		}
		if r.Progress > 0 {
			_ = protocol.WriteProgress(stdout, protocol.Progress{Files: int64(len(files)) / 2, Bytes: n / 2})
			_ = protocol.WriteProgress(stdout, protocol.Progress{Files: int64(len(files)), Bytes: n})
		}
		return 0, protocol.WriteResult(stdout, protocol.SyncStats{Files: len(files), Copied: len(files), CopiedBytes: n, Index: "ok", Duration: 1000})
	case *protocol.Pack:
		return f.pack(id, r, stdout, stderr)
	case *protocol.Unpack:
		return f.unpack(id, r, stdout, stderr)
	case *protocol.Wipe:
		vol, err := f.mounted(id, r.Dir)
		if err != nil {
			return 0, err
		}
		f.mu.Lock()
		f.files[vol] = nil
		f.mu.Unlock()
	}
	return 0, nil
}

// hostPath maps a path inside helper id to the plugin's machine through
// the helper's binds.
func (f *fakeEngine) hostPath(id, p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.helpers[id].Binds {
		if rest, ok := strings.CutPrefix(p, b.Target+"/"); ok {
			if f.foreign {
				return filepath.Join(b.Source, "elsewhere", rest), nil
			}
			return filepath.Join(b.Source, rest), nil
		}
	}
	return "", fmt.Errorf("helper %s has no bind for %s", id, p)
}

// notShared is what a helper that does not see the plugin's file says.
func notShared(stderr io.Writer) (int, error) {
	fmt.Fprintf(stderr, "helper: %v\n", helper.ErrNotShared)
	return protocol.ExitNotShared, nil
}

// pack does what the helper's pack does, on the fake's volumes and the
// real file behind the helper's bind.
func (f *fakeEngine) pack(id string, r *protocol.Pack, stdout, stderr io.Writer) (int, error) {
	out, err := f.hostPath(id, r.File)
	if err != nil {
		return 1, err
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != r.Token {
		return notShared(stderr)
	}
	if r.Probe {
		return 0, nil
	}
	target := map[string]string{"/v": "/v", "/s/data": "/s"}[r.Src]
	vol, err := f.mounted(id, target)
	if err != nil {
		return 1, err
	}
	f.mu.Lock()
	files := slices.Clone(f.files[vol])
	f.mu.Unlock()
	data, err := buildTar(files)
	if err != nil {
		return 1, err
	}
	var z bytes.Buffer
	enc, err := archive.NewEncoder(&z, 1)
	if err != nil {
		return 1, err
	}
	_, _ = enc.Write(data)
	if err := enc.Close(); err != nil {
		return 1, err
	}
	if err := os.WriteFile(out, z.Bytes(), 0o600); err != nil {
		return 1, err
	}
	return 0, protocol.WriteResult(stdout, protocol.PackResult{TarBytes: int64(len(data)), ArchiveBytes: int64(z.Len()), Entries: len(files)})
}

// unpack does what the helper's unpack does, from the real file behind
// the helper's bind into the fake's volume.
func (f *fakeEngine) unpack(id string, r *protocol.Unpack, stdout, stderr io.Writer) (int, error) {
	in, err := f.hostPath(id, r.Archive)
	if err != nil {
		return 1, err
	}
	b, err := os.ReadFile(in)
	sum := sha256.Sum256(b)
	if err != nil || int64(len(b)) != r.Size || hex.EncodeToString(sum[:]) != r.SHA256 {
		return notShared(stderr)
	}
	vol, err := f.mounted(id, r.Dir)
	if err != nil {
		return 1, err
	}
	dec, err := archive.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return 1, err
	}
	defer dec.Close()
	data, err := io.ReadAll(dec)
	if err != nil {
		return 1, err
	}
	if _, err := archive.CheckTar(bytes.NewReader(data), archive.SafetyOptions{AllowDevices: r.AllowDevices}); err != nil {
		fmt.Fprintln(stderr, "helper:", err)
		return 1, nil
	}
	files, err := readTar(data)
	if err != nil {
		return 1, err
	}
	f.mu.Lock()
	f.files[vol] = files
	f.unpacked = append(f.unpacked, vol)
	f.mu.Unlock()
	return 0, protocol.WriteResult(stdout, protocol.UnpackResult{Entries: len(files), Files: len(files), Duration: 1})
}

// isSync reports whether id is a staging helper (it serves sync execs).
func (f *fakeEngine) isSync(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := protocol.Decode(f.helpers[id].Cmd[min(2, len(f.helpers[id].Cmd)):])
	if err != nil {
		return false
	}
	_, serve := req.(*protocol.Serve)
	return serve
}

// freeBytes is the free space the fake's "space" helper reports.
func (f *fakeEngine) freeBytes() int64 {
	if f.free != 0 {
		return f.free
	}
	return 1 << 40
}

func (f *fakeEngine) RemoveHelper(ctx context.Context, id string) error {
	f.record("remove-helper", id, "")
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.helpers, id)
	return nil
}

func (f *fakeEngine) Exec(ctx context.Context, id string, spec backup.ExecSpec) (int, string, error) {
	f.record("exec", id, strings.Join(spec.Cmd, " "))
	f.mu.Lock()
	f.execs = append(f.execs, execCall{Container: id, Spec: spec})
	f.mu.Unlock()
	if f.ExecFn != nil {
		return f.ExecFn(ctx, id, spec)
	}
	return f.execDefault(ctx, id, spec)
}

// execDefault is what Exec does without ExecFn: a helper runs the helper
// command; a service container succeeds.
func (f *fakeEngine) execDefault(ctx context.Context, id string, spec backup.ExecSpec) (int, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	f.mu.Lock()
	_, helper := f.helpers[id]
	f.mu.Unlock()
	if !helper {
		return 0, "", nil
	}
	// Like the engine: stdout to spec.Output when set, and only the rest
	// in the returned output.
	var stdout, stderr strings.Builder
	var out io.Writer = &stdout
	if spec.Output != nil {
		out = spec.Output
	}
	code, err := f.helperCommand(id, spec.Cmd, out, &stderr)
	return code, strings.TrimSpace(stdout.String() + stderr.String()), err
}

// --- tar helpers ---

func buildTar(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, fl := range files {
		h := &tar.Header{Name: fl.Name, Typeflag: fl.Type, Mode: fl.Mode, Linkname: fl.Link, ModTime: time.Unix(1700000000, 0)}
		if fl.Type == tar.TypeReg {
			h.Size = int64(len(fl.Content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if fl.Type == tar.TypeReg {
			if _, err := io.WriteString(tw, fl.Content); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func readTar(data []byte) ([]file, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var out []file
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, file{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Content: string(content), Link: h.Linkname})
	}
}

// unroot turns a tar whose entries are "v", "v/a", ... into "./", "./a",
// ... and returns the mount point ("/v") they were addressed to.
func unroot(data []byte) (string, []byte, error) {
	files, err := readTar(data)
	if err != nil {
		return "", nil, err
	}
	root := ""
	for i, fl := range files {
		first, rest, _ := strings.Cut(strings.TrimSuffix(fl.Name, "/"), "/")
		if root == "" {
			root = first
		} else if first != root {
			return "", nil, fmt.Errorf("entry %q is not under %q", fl.Name, root)
		}
		name := "./" + rest
		if fl.Type == tar.TypeDir && rest != "" {
			name += "/"
		}
		files[i].Name = name
		if fl.Type == tar.TypeLink {
			_, lrest, _ := strings.Cut(fl.Link, "/")
			files[i].Link = "./" + lrest
		}
	}
	out, err := buildTar(files)
	return "/" + root, out, err
}

// mustTar is buildTar for tests.
func mustTar(t *testing.T, files []file) []byte {
	t.Helper()
	data, err := buildTar(files)
	if err != nil {
		t.Fatalf("build tar: %v", err)
	}
	return data
}

// failingReader returns data, then err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, r.err
	}
	return n, err
}
