package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// Options configure one backup run.
type Options struct {
	Project     *types.Project
	Dir         string // absolute backup directory
	Tag         string
	Level       int // zstd level (the compression_level setting mapped by the plugin)
	Timeouts    compose.Timeouts
	Reporter    progress.Reporter
	ToolVersion string
	Hooks       compose.Hooks
	Keep        map[string]string                 // services not to stop, with the reason
	Services    map[string]compose.ServiceOptions // x-autobackup per service (pre/post hooks)
	SkipVolumes map[string]string                 // volume keys not to back up, with the reason
	Host        string                            // recorded in the manifest; archive.Hostname() when empty
	Now         func() time.Time                  // for tests; time.Now when nil
	LastSizes   map[string]int64                  // uncompressed size per volume at the last backup, for progress ETAs
	LastArchive map[string]int64                  // archive size per volume at the last backup, for the direct path's progress
	Mode        string                            // snapshot setting: auto (default), staged or stream
	NoDirect    bool                              // always copy through the engine's API (see direct.go)
	// Preflight, when set, runs with the other checks before anything is
	// stopped (e.g. that the remote target is reachable and writable);
	// its error fails the run as a preflight failure.
	Preflight func(ctx context.Context) error
}

// Result is what a run did. It is returned even when the run failed, as
// far as the run got.
type Result struct {
	ID       string
	Path     string // the finished backup's directory; "" if none was written
	Started  time.Time
	Finished time.Time
	Downtime time.Duration // first container stopped to last one back and healthy
	// ServiceDowntime is each stopped service's own downtime: its first
	// container stopped → running and healthy again.
	ServiceDowntime map[string]time.Duration
	Volumes         []archive.Volume
	Stopped         []string // services that were stopped
	SizeBytes       int64    // total archive bytes
	Manifest        *archive.Manifest
	Mode            string // ModeStaged or ModeStream
	ModeReason      string
	// Warnings are the warnings the run reported, in order: among them
	// every way it did less well than configured (staged not possible,
	// direct path not shared), so status can show them after the fact.
	Warnings []string
}

// ErrPreflight marks a failure found before anything was stopped: nothing
// was changed.
var ErrPreflight = errors.New("nothing was stopped")

// Run performs one backup. The restart of stopped services happens on every
// path, with a context that survives the cancellation of ctx; its failure
// is returned as a *compose.RestartError joined to any backup error.
func Run(ctx context.Context, eng Engine, o Options) (res *Result, err error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	res = &Result{Started: now().UTC()}
	res.ID = archive.NewID(res.Started)
	defer func() { res.Finished = now().UTC() }()
	var warnMu sync.Mutex
	report := o.Reporter
	o.Reporter = progress.Func(func(e progress.Event) {
		if e.Kind == progress.Warning {
			warnMu.Lock()
			res.Warnings = append(res.Warnings, e.Message)
			warnMu.Unlock()
		}
		progress.Send(report, e)
	})
	p := o.Project

	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "plan"})
	containers, err := eng.Containers(ctx, p.Name)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	plan, err := MakePlan(p, containers, o.Keep, o.SkipVolumes)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	var vols []PlannedVolume
	for _, v := range plan.Volumes {
		if v.Skip == "" {
			vols = append(vols, v)
		}
	}
	if len(vols) == 0 {
		return res, fmt.Errorf("%w: project %s has no named volumes to back up", ErrPreflight, p.Name)
	}
	infos, err := inspectVolumes(ctx, eng, vols)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	services, err := serviceImages(ctx, eng, containers)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	img, err := eng.HelperImage(ctx)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if err := checkWritable(o.Dir, expectedBytes(o.Dir, p.Name, vols)); err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if o.Preflight != nil {
		if err := o.Preflight(ctx); err != nil {
			return res, fmt.Errorf("%w: %w", ErrPreflight, err)
		}
	}
	if _, err := archive.CleanPartials(o.Dir); err != nil {
		progress.Send(o.Reporter, progress.Event{Kind: progress.Warning, Message: "remove leftovers of an earlier interrupted run: " + err.Error()})
	}
	if err := runServiceHooks(ctx, eng, o, containers, false); err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	pending, err := archive.Begin(o.Dir, res.ID, p.Name)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = pending.Abort()
		}
	}()

	// Prepare the snapshot method, with services still running.
	mode, why := ChooseMode(o.Mode, img)
	env := &snapshotEnv{eng: eng, o: o, image: img.Ref, pending: pending, vols: vols, infos: infos}
	snap, mode, why, err := prepareSnapshot(ctx, env, mode, why, img)
	res.Mode, res.ModeReason = mode, why
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	// Runs after the deferred restart: helpers go once services are back.
	defer func() { err = errors.Join(err, snap.Cleanup(ctx)) }()
	collect := func() {
		res.Volumes, res.SizeBytes = snap.Volumes(), 0
		for _, v := range res.Volumes {
			res.SizeBytes += v.ArchiveBytes
		}
	}

	// Stop. What was stopped is brought back exactly once, on every path:
	// restart runs below once the copy is complete, or deferred.
	lc := &compose.Lifecycle{Engine: eng, Project: p, Timeouts: o.Timeouts, Reporter: o.Reporter, Hooks: o.Hooks, Keep: o.Keep}
	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "stop"})
	stopped, stopErr := lc.Stop(ctx, containers, nil)
	var restartOnce sync.Once
	restart := func() (rerr error) {
		restartOnce.Do(func() {
			progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "start"})
			rerr = stopped.Restart(ctx)
			if first := stopped.FirstStop(); !first.IsZero() {
				res.Downtime = time.Since(first)
			}
			res.ServiceDowntime = stopped.Downtimes()
		})
		return rerr
	}
	defer func() {
		res.Stopped = stopped.Services()
		err = errors.Join(err, restart())
	}()
	if stopErr != nil {
		return res, stopErr
	}

	// Capture, while stopped.
	progress.Send(o.Reporter, progress.Event{Kind: progress.Phase, Message: "snapshot"})
	err = snap.Capture(ctx)
	collect()
	if err != nil {
		return res, err
	}

	// Restart before writing the manifest, so the downtime is recorded.
	// Meanwhile the archives the helpers wrote are hashed.
	pending.HashDirect()
	restartErr := restart()
	for i, s := range services {
		if d, ok := res.ServiceDowntime[s.Name]; ok {
			services[i].DowntimeSeconds = math.Round(d.Seconds()*1000) / 1000
		}
	}

	// An interrupted run is aborted, not committed (see below), so what is
	// left to do with services back is not started.
	if ctx.Err() != nil {
		return res, errors.Join(fmt.Errorf("backup %s aborted: %w", res.ID, context.Cause(ctx)), restartErr)
	}

	// Finish, with services back.
	err = snap.Finish(ctx)
	collect()
	if err != nil {
		return res, errors.Join(err, restartErr)
	}
	if restartErr == nil {
		// Post hooks run with services back; a failure fails the run but
		// leaves the services up and the backup in place.
		if after, err := eng.Containers(ctx, p.Name); err != nil {
			restartErr = err
		} else if err := runServiceHooks(ctx, eng, o, after, true); err != nil {
			restartErr = err
		}
	}
	m := &archive.Manifest{
		FormatVersion:   archive.FormatVersion,
		ID:              res.ID,
		Project:         p.Name,
		ProjectDir:      p.WorkingDir,
		Host:            cmp.Or(o.Host, archive.Hostname()),
		Tag:             o.Tag,
		ToolVersion:     o.ToolVersion,
		Mode:            mode,
		Started:         res.Started,
		Finished:        now().UTC(),
		DowntimeSeconds: res.Downtime.Seconds(),
		Volumes:         res.Volumes,
		Services:        services,
	}
	// An interrupted run is aborted, not committed, even when the copy
	// happened to finish before the signal: the user asked to stop and is
	// told the run did not happen.
	if ctx.Err() != nil {
		return res, errors.Join(fmt.Errorf("backup %s aborted: %w", res.ID, context.Cause(ctx)), restartErr)
	}
	// A complete copy is worth keeping even if a service did not come
	// back: the run still fails (restartErr), but the data is safe.
	if err := pending.Commit(m); err != nil {
		return res, errors.Join(fmt.Errorf("write backup %s: %w", res.ID, err), restartErr)
	}
	committed = true
	res.Path = filepath.Join(o.Dir, res.ID)
	res.Manifest = m
	return res, restartErr
}

func inspectVolumes(ctx context.Context, eng Engine, vols []PlannedVolume) (map[string]engine.VolumeInfo, error) {
	infos := map[string]engine.VolumeInfo{}
	var missing []string
	for _, v := range vols {
		info, err := eng.Volume(ctx, v.Name)
		if errors.Is(err, engine.ErrNotFound) {
			missing = append(missing, fmt.Sprintf("%s (key %q, used by %s)", v.Name, v.Key, strings.Join(v.Services, ", ")))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspect volume %s: %w", v.Name, err)
		}
		infos[v.Name] = info
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("volume %s does not exist on the engine; create the project with `docker compose up` first, or mark the volume x-autobackup: {skip: true}", strings.Join(missing, ", "))
	}
	return infos, nil
}

func serviceImages(ctx context.Context, eng Engine, containers []engine.Container) ([]archive.Service, error) {
	seen := map[string]bool{}
	var out []archive.Service
	for _, c := range containers {
		if c.OneOff || seen[c.Service] {
			continue
		}
		seen[c.Service] = true
		s := archive.Service{Name: c.Service, Image: c.Image, ImageID: c.ImageID}
		if c.ImageID != "" {
			digests, err := eng.ImageDigests(ctx, c.ImageID)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return nil, fmt.Errorf("inspect image of %s: %w", c.Service, err)
			}
			s.RepoDigests = digests
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// snapshotVolume copies one volume into the pending backup through a
// helper container that is created with the volume mounted read-only and
// never started. The helper is removed on every path.
func snapshotVolume(ctx context.Context, eng Engine, o Options, image string, pending *archive.Pending, v *archive.Volume, before engine.VolumeInfo, expected int64) (err error) {
	id, err := createOnVolume(ctx, eng, engine.HelperSpec{Image: image, Project: o.Project.Name, Mounts: []engine.Mount{{Volume: v.Name, Target: "/v", ReadOnly: true}}}, before)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", v.Name, err)
	}
	defer func() { err = errors.Join(err, removeHelpers(ctx, eng, id)) }()
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: expected})
	rc, err := eng.CopyFrom(ctx, id, "/v/.")
	if err != nil {
		return fmt.Errorf("snapshot %s: read from the engine: %w", v.Name, err)
	}
	defer rc.Close()
	err = pending.WriteVolume(ctx, v, rc, o.Level, func(n int64) {
		progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: v.Name, Bytes: n, Total: expected})
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", v.Name, err)
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: v.TarBytes, Total: v.ArchiveBytes, Message: viaAPI})
	return nil
}

// expectedBytes estimates the room a backup of vols needs: the archive
// bytes of each volume in the newest backup of project in dir that holds it. Volumes
// never backed up count nothing, so the estimate is 0 when nothing is known.
func expectedBytes(dir, project string, vols []PlannedVolume) int64 {
	entries, _ := archive.List(dir, project)
	var total int64
	for _, v := range vols {
		for _, e := range entries {
			if e.Manifest == nil {
				continue
			}
			if i := slices.IndexFunc(e.Manifest.Volumes, func(av archive.Volume) bool { return av.Name == v.Name }); i >= 0 {
				total += e.Manifest.Volumes[i].ArchiveBytes
				break
			}
		}
	}
	return total
}

// checkWritable makes sure the backup directory exists (0700), accepts
// files and, when the size of the backup can be estimated (need > 0), has
// that much free space, before anything is stopped.
func checkWritable(dir string, need int64) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("backup directory %s is a file; set another with `docker autobackup config set directory PATH`", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create backup directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".autobackup-probe-*")
	if err != nil {
		return fmt.Errorf("backup directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return err
	}
	if free, ok := freeBytes(dir); ok && need > 0 && free < need {
		return fmt.Errorf("not enough free space in backup directory %s: the last backup of these volumes took %s, %s is free; free some space (docker autobackup prune) or set another directory with `docker autobackup config set directory PATH`",
			dir, size.Format(need), size.Format(free))
	}
	return nil
}

// createOnVolume creates a helper whose first mount is the source volume
// inspected before the stop as before. The engine silently creates a
// missing volume when a container mounts it, so the volume is checked right
// before (it must exist) and right after (it must be the same one: driver,
// options and labels); once the helper exists it holds the volume, which
// can then no longer be removed. Otherwise we would archive an empty tree
// and call it a backup.
func createOnVolume(ctx context.Context, eng Engine, spec engine.HelperSpec, before engine.VolumeInfo) (string, error) {
	name := spec.Mounts[0].Volume
	if _, err := eng.Volume(ctx, name); errors.Is(err, engine.ErrNotFound) {
		return "", fmt.Errorf("the volume was removed during the backup; nothing of it was copied")
	} else if err != nil {
		return "", err
	}
	id, err := eng.CreateHelper(ctx, spec)
	if err != nil {
		return "", err
	}
	now, err := eng.Volume(ctx, name)
	if err == nil && !sameVolume(before, now) {
		err = fmt.Errorf("the volume was removed and re-created during the backup (the engine re-created it empty when the helper mounted it; remove it with `docker volume rm %s` if it should not exist)", name)
	}
	if err != nil {
		_ = eng.RemoveHelper(context.WithoutCancel(ctx), id)
		return "", err
	}
	return id, nil
}

func sameVolume(a, b engine.VolumeInfo) bool {
	return a.Name == b.Name && a.Driver == b.Driver && maps.Equal(a.Options, b.Options) && maps.Equal(a.Labels, b.Labels)
}

// syncLine says what a sync pass did: what is "pre-copied" for a pass
// while the services run, "synced" for the delta sync while they are
// stopped.
func syncLine(what, volume string, st protocol.SyncStats) string {
	how := ""
	if st.Clone {
		how = " (reflinked)"
	}
	line := fmt.Sprintf("%s %s: %d changed file(s), %d bytes%s", what, volume, st.Copied, st.CopiedBytes, how)
	switch {
	case st.Patched > 0 && st.Clone && st.ComparedBytes == 0:
		// Cloned over the staging copy in place: nothing read or written.
		line += fmt.Sprintf(", %d updated in place by reflink (no data copied)", st.Patched)
	case st.Patched > 0:
		line += fmt.Sprintf(", %d patched in place (%s written of %s compared)", st.Patched, size.Format(st.PatchedBytes), size.Format(st.ComparedBytes))
	}
	if st.Deferred > 0 {
		line += fmt.Sprintf(", %d large file(s) (%s) left to clone while stopped", st.Deferred, size.Format(st.DeferredBytes))
	}
	return line + fmt.Sprintf(", %d deleted, in %s", st.Deleted, time.Duration(st.Duration).Round(time.Millisecond))
}
