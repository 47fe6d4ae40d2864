package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/iocount"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// RestoreOptions configure a restore of one backup into the project.
type RestoreOptions struct {
	Project    *types.Project
	BackupPath string
	Manifest   *archive.Manifest
	Volumes    []string // engine names or compose keys; empty means all in the backup
	Safety     archive.SafetyOptions
	Timeouts   compose.Timeouts
	Reporter   progress.Reporter
	Hooks      compose.Hooks
	NoDirect   bool // always write through the engine's API (see direct.go)
	// StopOthers stops (and afterwards starts) running containers outside
	// the project that use a volume being restored; without it they make
	// the plan fail.
	StopOthers bool
}

// VolumeMap is where one backed-up volume goes: a backup's volume is
// restored into the project's volume of the same compose key, which is a
// different engine volume when the backup is another project's.
type VolumeMap struct {
	Key  string // compose key
	From string // the volume's name in the backup
	To   string // the project's volume that is replaced
}

// RestorePlan is what a restore will do; it is shown before asking.
type RestorePlan struct {
	// Volumes are the backup's volumes to restore, each with Name set to
	// the project's volume it replaces (see Map for the names in the
	// backup).
	Volumes    []archive.Volume
	Map        []VolumeMap
	Create     []string           // volumes that no longer exist and will be created
	Others     []engine.Container // running containers outside the project that use the volumes; stopped only with StopOthers
	StopOrder  [][]string
	Containers []engine.Container
	image      engine.HelperImage
}

// ErrVerify marks a backup that failed verification: nothing was touched.
var ErrVerify = errors.New("backup failed verification")

type verifyError struct{ msg string }

func (e verifyError) Error() string        { return e.msg }
func (e verifyError) Is(target error) bool { return target == ErrVerify }

// PlanRestore selects and checks everything before anything is touched:
// the volumes exist in the backup, the archives verify (checksum,
// decompression, tar structure, no entry escaping the volume), and a
// helper can run on this engine.
func PlanRestore(ctx context.Context, eng Engine, o RestoreOptions) (*RestorePlan, error) {
	rp := &RestorePlan{}
	sel, err := selectVolumes(o.Manifest, o.Volumes)
	if err != nil {
		return nil, err
	}
	sub := *o.Manifest
	sub.Volumes = sel
	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "verify"})
	var bad []string
	badArchive := map[string]bool{}
	for _, c := range archive.VerifyProgress(ctx, o.BackupPath, &sub, o.Safety, o.Reporter) {
		if c.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", c.Archive, c.Err))
			badArchive[c.Archive] = true
		}
	}
	if len(bad) > 0 {
		// Name the volumes, and offer the ones that verified: the user
		// decides whether a partial restore is what they want.
		var broken, good []string
		for _, v := range sel {
			if badArchive[v.Archive] {
				broken = append(broken, v.Name)
			} else {
				good = append(good, v.Key)
			}
		}
		msg := fmt.Sprintf("%s, nothing was changed: volume(s) %s: %s", ErrVerify, strings.Join(broken, ", "), strings.Join(bad, "; "))
		if len(good) > 0 {
			msg += "; the other volumes verified: restore only those with --volume " + strings.Join(good, " --volume ")
		}
		return nil, verifyError{msg}
	}
	targets, err := mapVolumes(o.Project, o.Manifest, sel)
	if err != nil {
		return nil, err
	}
	for i, v := range sel {
		rp.Map = append(rp.Map, VolumeMap{Key: v.Key, From: v.Name, To: targets[i]})
		v.Name = targets[i]
		v.Labels = retarget(v.Labels, o.Project.Name, v.Key)
		rp.Volumes = append(rp.Volumes, v)
	}
	var busy []string
	for _, v := range rp.Volumes {
		if _, err := eng.Volume(ctx, v.Name); errors.Is(err, engine.ErrNotFound) {
			rp.Create = append(rp.Create, v.Name)
			continue
		} else if err != nil {
			return nil, fmt.Errorf("inspect volume %s: %w", v.Name, err)
		}
		users, err := eng.VolumeUsers(ctx, v.Name)
		if err != nil {
			return nil, err
		}
		for _, c := range users {
			if c.Project == o.Project.Name && !c.Helper {
				continue // stopped with the project's services
			}
			// A helper reads or writes the volume even when never started
			// (copies through the engine's API).
			if !c.Helper && c.State != "running" && c.State != "restarting" && c.State != "paused" {
				continue
			}
			if slices.ContainsFunc(rp.Others, func(o engine.Container) bool { return o.ID == c.ID }) {
				continue
			}
			rp.Others = append(rp.Others, c)
			busy = append(busy, fmt.Sprintf("%s (%s)", c.Name, describeUser(c, v.Name)))
		}
	}
	if len(busy) > 0 && !o.StopOthers {
		return nil, fmt.Errorf("%w: containers outside project %s are running with these volumes: %s; stop them first, or pass --stop-others to have the restore stop and restart them; nothing was changed",
			ErrInUse, o.Project.Name, strings.Join(busy, ", "))
	}
	for _, c := range rp.Others {
		if c.Helper {
			return nil, fmt.Errorf("%w: a backup or restore of project %s is using volume(s) of this restore right now (helper %s); wait for it to finish; nothing was changed", ErrInUse, c.Project, c.Name)
		}
	}
	img, err := eng.HelperImage(ctx)
	if err != nil {
		return nil, err
	}
	if !img.CanRun {
		return nil, fmt.Errorf("restore runs a helper container with this plugin's own binary to write each volume, and that is not possible here: %s; run the restore with a plugin built for the engine's OS and architecture", img.Reason)
	}
	rp.image = img
	containers, err := eng.Containers(ctx, o.Project.Name)
	if err != nil {
		return nil, err
	}
	rp.Containers = containers
	services := servicesUsing(o.Project, rp.Volumes)
	running := compose.Running(containers)
	var stop []string
	for _, s := range services {
		if len(running[s]) > 0 {
			stop = append(stop, s)
		}
	}
	start := levels(o.Project, stop)
	for i := len(start) - 1; i >= 0; i-- {
		rp.StopOrder = append(rp.StopOrder, start[i])
	}
	return rp, nil
}

// selectVolumes picks the named volumes (engine name or compose key) from
// the manifest.
func selectVolumes(m *archive.Manifest, names []string) ([]archive.Volume, error) {
	if len(names) == 0 {
		return m.Volumes, nil
	}
	var out []archive.Volume
	for _, n := range names {
		i := slices.IndexFunc(m.Volumes, func(v archive.Volume) bool { return v.Name == n || v.Key == n })
		if i < 0 {
			var have []string
			for _, v := range m.Volumes {
				have = append(have, v.Name)
			}
			return nil, usageErrorf("volume %q is not in backup %s (it has: %s)", n, m.ID, strings.Join(have, ", "))
		}
		if !slices.ContainsFunc(out, func(v archive.Volume) bool { return v.Name == m.Volumes[i].Name }) {
			out = append(out, m.Volumes[i])
		}
	}
	return out, nil
}

// ErrInUse marks a restore refused because something outside the project
// uses its volumes: nothing was changed.
var ErrInUse = errors.New("volume in use")

func describeUser(c engine.Container, volume string) string {
	switch {
	case c.Helper:
		return "an autobackup helper of project " + c.Project
	case c.Project != "":
		return "project " + c.Project + ", uses " + volume
	}
	return "no compose project, uses " + volume
}

// mapVolumes returns, for each selected volume of the backup, the engine
// name of the project's volume with the same compose key. A volume whose
// key the project does not declare cannot be restored here.
func mapVolumes(p *types.Project, m *archive.Manifest, sel []archive.Volume) ([]string, error) {
	out := make([]string, len(sel))
	var missing []string
	for i, v := range sel {
		if _, ok := p.Volumes[v.Key]; v.Key == "" || !ok {
			missing = append(missing, fmt.Sprintf("%s (key %q)", v.Name, v.Key))
			continue
		}
		out[i] = volumeName(p, v.Key)
	}
	if len(missing) > 0 {
		var have []string
		for k := range p.Volumes {
			have = append(have, k)
		}
		sort.Strings(have)
		return nil, usageErrorf("backup %s has volume(s) %s that project %s does not declare (its volumes: %s); choose the others with --volume",
			m.ID, strings.Join(missing, ", "), p.Name, strings.Join(have, ", "))
	}
	return out, nil
}

// retarget rewrites compose's labels of a recorded volume for the project
// it is re-created in, so that compose adopts it as its own.
func retarget(labels map[string]string, project, key string) map[string]string {
	if labels == nil {
		return nil
	}
	out := maps.Clone(labels)
	if _, ok := out[engine.LabelComposeProject]; ok {
		out[engine.LabelComposeProject] = project
	}
	if _, ok := out[labelComposeVolume]; ok {
		out[labelComposeVolume] = key
	}
	return out
}

// labelComposeVolume is the label compose puts on the volumes it creates.
const labelComposeVolume = "com.docker.compose.volume"

// ErrUsage marks errors in what the caller asked for (exit code 2).
var ErrUsage = errors.New("invalid request")

// usageError is an error in what the caller asked for: errors.Is ErrUsage,
// worded without its prefix.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == ErrUsage }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// servicesUsing returns the services that mount one of vols, plus every
// service that depends on them (directly or not): those must not run while
// the data under them is replaced.
func servicesUsing(p *types.Project, vols []archive.Volume) []string {
	names := map[string]bool{}
	for _, v := range vols {
		names[v.Name] = true
	}
	set := map[string]bool{}
	for name, svc := range p.Services {
		for _, m := range svc.Volumes {
			if m.Type != types.VolumeTypeVolume || m.Source == "" {
				continue
			}
			if names[volumeName(p, m.Source)] {
				set[name] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for name, svc := range p.Services {
			if set[name] {
				continue
			}
			for dep := range svc.DependsOn {
				if set[dep] {
					set[name], changed = true, true
					break
				}
			}
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Started, Finished time.Time
	Volumes           []string
	Stopped           []string
	Downtime          time.Duration
}

// Restore replaces the contents of the planned volumes with the backup's,
// with the services using them stopped; they are restarted on every path.
func Restore(ctx context.Context, eng Engine, o RestoreOptions, rp *RestorePlan) (res *RestoreResult, err error) {
	res = &RestoreResult{Started: time.Now().UTC()}
	defer func() { res.Finished = time.Now().UTC() }()
	var stopList []string
	for _, l := range rp.StopOrder {
		stopList = append(stopList, l...)
	}
	lc := &compose.Lifecycle{Engine: eng, Project: o.Project, Timeouts: o.Timeouts, Reporter: o.Reporter, Hooks: o.Hooks}
	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "stop"})
	if stopList == nil {
		stopList = []string{}
	}
	stopped, stopErr := lc.Stop(ctx, rp.Containers, stopList)
	if stopErr == nil && len(rp.Others) > 0 {
		startOthers, othersErr := stopOthers(ctx, eng, o, rp.Others)
		defer func() { err = errors.Join(err, startOthers()) }()
		stopErr = othersErr
	}
	defer func() {
		progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "start"})
		restartErr := stopped.Restart(ctx)
		res.Stopped = stopped.Services()
		if first := stopped.FirstStop(); !first.IsZero() {
			res.Downtime = time.Since(first)
		}
		err = errors.Join(err, restartErr)
	}()
	if stopErr != nil {
		return res, stopErr
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "restore"})
	direct := directAllowed(rp.image, o.NoDirect)
	for _, v := range rp.Volumes {
		if slices.Contains(rp.Create, v.Name) {
			if err := eng.CreateVolume(ctx, engine.VolumeInfo{Name: v.Name, Driver: v.Driver, Options: v.DriverOpts, Labels: v.Labels}); err != nil {
				return res, fmt.Errorf("create volume %s: %w", v.Name, err)
			}
		}
		if direct {
			err := unpackVolume(ctx, eng, o, rp.image.Ref, v)
			if err == nil {
				res.Volumes = append(res.Volumes, v.Name)
				continue
			}
			if !errors.Is(err, errNotShared) {
				return res, fmt.Errorf("restore %s: %w", v.Name, err)
			}
			// Same engine, same answer for the other volumes.
			direct = false
			progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Message: "writing through the engine's API: " + err.Error()})
		}
		if err := restoreVolume(ctx, eng, o, rp.image.Ref, v); err != nil {
			return res, fmt.Errorf("restore %s: %w", v.Name, err)
		}
		res.Volumes = append(res.Volumes, v.Name)
	}
	return res, nil
}

// unpackVolume restores v with a helper that reads the archive from the
// backup directory, bound read-only into it, and writes the volume itself
// (see helper.Unpack). errNotShared, before the volume was touched, means
// the helper did not see the archive.
func unpackVolume(ctx context.Context, eng Engine, o RestoreOptions, image string, v archive.Volume) (err error) {
	id, err := eng.CreateHelper(ctx, engine.HelperSpec{
		Image: image, Project: o.Project.Name,
		Mounts: []engine.Mount{{Volume: v.Name, Target: "/v"}},
		Binds:  []engine.Bind{{Source: o.BackupPath, Target: "/in", ReadOnly: true}},
		Cmd:    protocol.Argv(&protocol.Serve{}),
	})
	if err != nil {
		return notShared(err)
	}
	defer func() { err = errors.Join(err, removeHelpers(ctx, eng, id)) }()
	if err := eng.StartContainer(ctx, id); err != nil {
		return fmt.Errorf("start the restore helper: %w", err)
	}
	// The helper reports how much of the archive it has unpacked while it
	// works; its result is the last line.
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: v.TarBytes})
	stream := protocol.NewStream(func(p protocol.Progress) {
		progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: v.Name, Bytes: p.Bytes, Total: v.TarBytes})
	})
	req := &protocol.Unpack{SHA256: v.SHA256, Size: v.ArchiveBytes, AllowDevices: o.Safety.AllowDevices,
		Progress: unpackProgressEvery, Archive: "/in/" + v.Archive, Dir: "/v"}
	code, out, err := eng.Exec(ctx, id, engine.ExecSpec{Cmd: protocol.Argv(req), Output: stream})
	if err := helperOutcome(code, out, err, nil); err != nil {
		return err
	}
	var res protocol.UnpackResult
	if err := stream.Result(&res); err != nil {
		return err
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: v.TarBytes, Total: v.ArchiveBytes,
		Message: fmt.Sprintf("%d entries, %s of it written, %d removed, %s", res.Entries, size.Format(res.Written), res.Removed, viaHelper)})
	return nil
}

// unpackProgressEvery is how often a restoring helper reports.
const unpackProgressEvery = 200 * time.Millisecond

func restoreVolume(ctx context.Context, eng Engine, o RestoreOptions, image string, v archive.Volume) (err error) {
	id, err := eng.CreateHelper(ctx, engine.HelperSpec{
		Image: image, Project: o.Project.Name, KeepLogs: true,
		Mounts: []engine.Mount{{Volume: v.Name, Target: "/v"}},
		Cmd:    protocol.Argv(&protocol.Wipe{Dir: "/v"}),
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, removeHelpers(ctx, eng, id)) }()
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: v.TarBytes})
	code, out, err := eng.RunHelper(ctx, id)
	if err != nil {
		return fmt.Errorf("empty the volume: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("empty the volume: helper exited with code %d: %s", code, out)
	}
	src, err := archive.OpenVolume(o.BackupPath, v)
	if err != nil {
		return err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	counted := &iocount.Reader{R: pr, Report: func(n int64) {
		progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: v.Name, Bytes: n, Total: v.TarBytes})
	}}
	sanitized := make(chan error, 1)
	go func() {
		// Defence in depth: the archive was verified, but refuse again
		// entry by entry while streaming in case the file changed since.
		// Batch the tar writer's small writes (512-byte headers) so the
		// upload to the engine moves in large chunks.
		bw := bufio.NewWriterSize(pw, 1<<20)
		err := archive.Rooted(ctx, bw, src, o.Safety, "v")
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		sanitized <- err
	}()
	copyErr := eng.CopyTo(ctx, id, "/", counted)
	// Unblock the goroutine if CopyTo stopped reading early, and wait for
	// it: it reads src, which is closed when we return.
	pr.CloseWithError(io.ErrClosedPipe)
	sanErr := <-sanitized
	if copyErr != nil {
		return fmt.Errorf("write into the volume: %w", copyErr)
	}
	if sanErr != nil {
		return fmt.Errorf("write into the volume: %w", sanErr)
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: counted.N, Total: v.ArchiveBytes, Message: viaAPI})
	return nil
}

// stopOthers stops containers outside the project that use the restored
// volumes, and returns what starts them again (with a context that
// survives the cancellation of ctx).
func stopOthers(ctx context.Context, eng Engine, o RestoreOptions, cs []engine.Container) (func() error, error) {
	var stopped []engine.Container
	start := func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeouts.Start+o.Timeouts.Health)
		defer cancel()
		var errs []error
		for i := len(stopped) - 1; i >= 0; i-- {
			c := stopped[i]
			progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Message: "starting " + c.Name + " (outside the project)"})
			if err := eng.StartContainer(rctx, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("start %s again: %w; start it with: docker start %s", c.Name, err, c.Name))
			}
		}
		return errors.Join(errs...)
	}
	for _, c := range cs {
		progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Message: "stopping " + c.Name + " (outside the project, --stop-others)"})
		if err := eng.StopContainer(ctx, c.ID, o.Timeouts.Stop); err != nil {
			return start, fmt.Errorf("stop %s: %w", c.Name, err)
		}
		stopped = append(stopped, c)
	}
	return start, nil
}
