package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// Snapshot modes (the snapshot setting; see archive.ModeAuto).
const (
	ModeAuto   = archive.ModeAuto
	ModeStaged = archive.ModeStaged
	ModeStream = archive.ModeStream
)

// StagingName is the staging volume kept for source volume name.
func StagingName(volume string) string { return volume + "-autobackup-staging" }

// ChooseMode decides between staged and stream for setting, given the
// helper image, and says why.
func ChooseMode(setting string, img engine.HelperImage) (string, string) {
	switch setting {
	case ModeStream:
		return ModeStream, "snapshot = \"stream\" in the settings"
	case ModeStaged, ModeAuto, "":
		if !img.CanRun {
			return ModeStream, "staged needs a helper running this plugin's binary, and " + img.Reason
		}
		if setting == ModeStaged {
			return ModeStaged, "snapshot = \"staged\" in the settings"
		}
		return ModeStaged, "auto: copy while services run, then only the changes while they are stopped"
	}
	return ModeStream, fmt.Sprintf("unknown snapshot mode %q", setting)
}

// syncRequest mirrors /src into /s/data; its index in /s/index lets the
// second run copy only what changed (see helper.Sync). The delta-sync,
// while the services are stopped, keeps the pre-copy's index and does not
// flush the mirror: both would only add to the downtime, the archive reads
// the mirror right away, and the next pre-copy is safe with that index.
//
// Where copies are reflinks (volume and staging copy on one xfs or btrfs:
// Docker's root there, or a bind-folder volume whose staging copy goes
// beside it), the passes while the services run leave the large
// files out and drop their clones (DeferLarge), and the delta-sync clones
// them: a clone costs metadata while stopped, but one kept while the
// application runs makes its writes copy-on-write, its own shutdown
// slower included. The pack drops each clone as soon as its file is in
// the archive (protocol.Pack.DropLarge); when the archive went through the
// engine's API instead, one more such pass drops them afterwards
// (stager.unshare).
func syncRequest(delta bool) *protocol.Sync {
	return &protocol.Sync{Index: "/s/index", KeepIndex: delta, DeferLarge: !delta, Progress: syncProgressEvery, Src: "/src", Dst: "/s/data"}
}

// syncProgressEvery is how often a sync helper reports progress; a sync
// that ends sooner says nothing until its result.
const syncProgressEvery = 100 * time.Millisecond

// stager keeps one volume's staging helper between the phases of a staged
// backup: pre-copy while running, delta sync while stopped, archive after.
type stager struct {
	vol    PlannedVolume
	helper string
	file   *archive.DirectFile // the archive the helper writes directly; nil to copy through the API
	total  int64               // the source's size, for progress; 0 if unknown
	// deferred: the last pre-copy left large files to the delta-sync to
	// clone, so the staging copy shares their extents once that ran
	deferred bool
}

// stagedSnapshot is the staged method: each volume is copied into a
// staging volume while the services run (the pre-copy), only what changed
// since is copied while they are stopped (the delta sync), and the staging
// copies are archived once they run again.
type stagedSnapshot struct {
	*snapshotEnv
	archived
	stagers []*stager
}

// Prepare makes sure every volume has a staging volume with room for its
// data, creates the helpers and runs the pre-copy while services are
// still running. Any problem returns an error and the caller falls back to
// the stream mode: nothing has been stopped yet.
func (s *stagedSnapshot) Prepare(ctx context.Context) error {
	s.report(progress.Event{Kind: progress.Phase, Message: "pre-copy"})
	eng, o := s.eng, s.o
	var passes []protocol.SyncStats
	for _, v := range s.vols {
		stage := StagingName(v.Name)
		if _, err := eng.Volume(ctx, stage); errors.Is(err, engine.ErrNotFound) {
			sv := engine.VolumeInfo{Name: stage, Driver: "local", Labels: map[string]string{
				engine.LabelStaging: "true", engine.LabelProject: o.Project.Name, engine.LabelStagingSource: v.Name,
			}}
			if dir, ok := stagingBesideSource(s.infos[v.Name], o.NoDirect); ok {
				sv.Options = map[string]string{"type": "none", "o": "bind", "device": dir}
				s.report(progress.Event{Kind: progress.Info, Volume: v.Name, Message: "staging copy of " + v.Name + " in " + dir + ", on the same file system (reflinks where it has them)"})
			}
			if err := eng.CreateVolume(ctx, sv); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		mounts := []engine.Mount{{Volume: v.Name, Target: "/src", ReadOnly: true}, {Volume: stage, Target: "/s"}}
		// Free space first: the staging copy needs room for the data.
		sid, err := eng.CreateHelper(ctx, engine.HelperSpec{Image: s.image, Project: o.Project.Name, KeepLogs: true, Mounts: mounts,
			Cmd: protocol.Argv(&protocol.Space{Src: "/src", Stage: "/s"})})
		if err != nil {
			return err
		}
		code, out, err := eng.RunHelper(ctx, sid)
		_ = eng.RemoveHelper(context.WithoutCancel(ctx), sid)
		if err != nil {
			return fmt.Errorf("measure %s: %w", v.Name, err)
		}
		var sp protocol.SpaceResult
		if code != 0 || protocol.ReadResult(out, &sp) != nil {
			return fmt.Errorf("measure %s: helper exited with code %d%s", v.Name, code, tailOf(out))
		}
		if need := sp.Need(); sp.FreeBytes < need {
			return fmt.Errorf("not enough free space for the staging copy of %s: it needs %s more, %s is free", v.Name, size.Format(need), size.Format(sp.FreeBytes))
		}

		// The helper keeps running (serve) so the delta sync, while the
		// services are down, is an exec into it rather than the start of
		// a container: that is most of the downtime we add.
		// It also sees the partial backup directory, when the engine
		// shares it, so that it can write the archive there itself.
		st, err := startStager(ctx, eng, o, engine.HelperSpec{Image: s.image, Project: o.Project.Name, Mounts: mounts,
			Cmd: protocol.Argv(&protocol.Serve{})}, v, s.infos[v.Name], s.pending)
		if st != nil {
			st.total = cmp.Or(sp.SrcBytes, o.LastSizes[v.Name])
			s.stagers = append(s.stagers, st)
		}
		if err != nil {
			return err
		}
		s.report(progress.Event{Kind: progress.Info, Volume: v.Name, Message: fmt.Sprintf("pre-copy %s (services still running)", v.Name)})
		first, err := st.sync(ctx, eng, o, false)
		if err != nil {
			return fmt.Errorf("pre-copy %s: %w", v.Name, err)
		}
		s.report(progress.Event{Kind: progress.Info, Volume: v.Name, Message: syncLine("pre-copied", v.Name, first)})
		passes = append(passes, first)
	}
	return refinePreCopy(ctx, eng, o, s.stagers, passes)
}

// Capture copies, for all volumes at once, only what changed since the
// pre-copy started: this is the part of the downtime we own.
func (s *stagedSnapshot) Capture(ctx context.Context) error {
	errs := make([]error, len(s.stagers))
	var wg sync.WaitGroup
	for i, st := range s.stagers {
		wg.Go(func() {
			stats, err := st.sync(ctx, s.eng, s.o, true)
			if err != nil {
				errs[i] = fmt.Errorf("snapshot %s: delta sync: %w", st.vol.Name, err)
				return
			}
			s.report(progress.Event{Kind: progress.Info, Volume: st.vol.Name, Message: syncLine("synced  ", st.vol.Name, stats)})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Finish archives the staging copies, with the services already back.
func (s *stagedSnapshot) Finish(ctx context.Context) error {
	s.report(progress.Event{Kind: progress.Phase, Message: "archive"})
	for _, st := range s.stagers {
		av := s.newVolume(st.vol)
		if err := archiveStaged(ctx, s.eng, s.o, s.pending, st, &av); err != nil {
			return err
		}
		s.add(av)
		if err := st.unshare(ctx, s.eng, s.o); err != nil {
			// The backup is whole; the clones go with the next pre-copy.
			s.report(progress.Event{Kind: progress.Warning, Volume: st.vol.Name, Message: fmt.Sprintf("%s: could not drop the staging copy's clones of its large files (the next backup does): %v", st.vol.Name, err)})
		}
	}
	return nil
}

// Cleanup removes the staging helpers (the staging volumes stay, for the
// next pre-copy) and discards unfinished archive files.
func (s *stagedSnapshot) Cleanup(ctx context.Context) error {
	st := s.stagers
	s.stagers = nil
	return removeStagers(ctx, s.eng, st)
}

// The pre-copy is repeated, for all volumes at once, as long as each pass
// finds clearly less changed than the one before: every pass copies what
// changed while the previous one ran, so the stop starts from the
// freshest copy and the delta sync while stopped has the least to do. A
// workload that changes data as fast as we copy it (a busy database) stops
// the repetition after a pass that did not shrink; the bounds keep a
// pathological one from delaying the backup.
const (
	maxPreCopyPasses = 4
	preCopyBudget    = 2 * time.Minute
	// preCopyEnough: less than this left and another pass gains nothing
	// the delta sync would not do in milliseconds.
	preCopyEnough = 4 << 20
)

// passWork is what a sync pass had to read: the files that changed since
// the pass before.
func passWork(passes []protocol.SyncStats) int64 {
	var n int64
	for _, p := range passes {
		n += p.CopiedBytes + p.ComparedBytes
	}
	return n
}

func refinePreCopy(ctx context.Context, eng Engine, o Options, stagers []*stager, passes []protocol.SyncStats) error {
	deadline := time.Now().Add(preCopyBudget)
	left := passWork(passes)
	for pass := 2; pass <= maxPreCopyPasses && left >= preCopyEnough && time.Now().Before(deadline); pass++ {
		next := make([]protocol.SyncStats, len(stagers))
		errs := make([]error, len(stagers))
		var wg sync.WaitGroup
		for i, s := range stagers {
			wg.Go(func() {
				next[i], errs[i] = s.sync(ctx, eng, o, false)
				if errs[i] != nil {
					errs[i] = fmt.Errorf("pre-copy %s: %w", s.vol.Name, errs[i])
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		work := passWork(next)
		progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Message: fmt.Sprintf("pre-copy pass %d: %s had changed during the pass before", pass, size.Format(work))})
		if work > left*9/10 {
			break // no longer shrinking: the delta sync does the rest
		}
		left = work
	}
	return nil
}

// startStager creates and starts the serving helper of v. Unless the
// direct path is off, it first tries with the partial backup directory
// bound into it, and without when the engine refuses that bind.
func startStager(ctx context.Context, eng Engine, o Options, spec engine.HelperSpec, v PlannedVolume, before engine.VolumeInfo, pending *archive.Pending) (*stager, error) {
	if !o.NoDirect {
		f, err := pending.Direct(v.Name)
		if err != nil {
			return nil, err
		}
		st, err := startBoundStager(ctx, eng, o, spec, v, before, pending.Path(), f)
		if st != nil || ctx.Err() != nil {
			return st, err
		}
		progress.Send(o.Reporter, progress.Event{Kind: progress.Warning, Volume: v.Name, Message: "the archive of " + v.Name + " goes through the engine's API, which is slower: " + notShared(err).Error()})
	}
	id, err := createOnVolume(ctx, eng, spec, before)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	st := &stager{vol: v, helper: id}
	if err := eng.StartContainer(ctx, id); err != nil {
		return st, fmt.Errorf("start the sync helper for %s: %w", v.Name, err)
	}
	return st, nil
}

// startBoundStager starts v's helper with the partial backup directory dir
// bound at /out, so it can write f itself. A helper that starts but does
// not see f is kept, without f. Otherwise, unless ctx was cancelled, it
// leaves nothing behind and returns a nil stager.
func startBoundStager(ctx context.Context, eng Engine, o Options, spec engine.HelperSpec, v PlannedVolume, before engine.VolumeInfo, dir string, f *archive.DirectFile) (*stager, error) {
	spec.Binds = []engine.Bind{{Source: dir, Target: outDir}}
	id, err := createOnVolume(ctx, eng, spec, before)
	if err != nil {
		f.Discard()
		return nil, err
	}
	st := &stager{vol: v, helper: id, file: f}
	if err = eng.StartContainer(ctx, id); err == nil {
		err = probe(ctx, eng, id, "/s", f)
	}
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, errNotShared):
		f.Discard()
		st.file = nil
		progress.Send(o.Reporter, progress.Event{Kind: progress.Warning, Volume: v.Name, Message: "the archive of " + v.Name + " goes through the engine's API, which is slower: " + err.Error()})
		return st, nil
	case ctx.Err() != nil:
		return st, err // the caller removes it
	}
	_ = removeStagers(ctx, eng, []*stager{st})
	return nil, err
}

// stagingBesideSource places the staging copy of a volume that binds a
// folder (local driver, o=bind, device=DIR) in a folder next to it,
// DIR.autobackup-staging, so that both are on one file system: only there
// can a copy be a reflink (xfs, btrfs), and the delta sync's renames stay
// cheap. It needs that folder on this machine, so it is only tried when
// the engine shares this machine's folders (the direct path is on) and
// DIR exists here; otherwise the staging volume is a plain one.
func stagingBesideSource(src engine.VolumeInfo, noDirect bool) (string, bool) {
	dev := src.Options["device"]
	if noDirect || src.Driver != "local" || dev == "" || !filepath.IsAbs(dev) || !strings.Contains(","+src.Options["o"]+",", ",bind,") {
		return "", false
	}
	if fi, err := os.Stat(dev); err != nil || !fi.IsDir() {
		return "", false
	}
	dir := filepath.Clean(dev) + ".autobackup-staging"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false
	}
	return dir, true
}

// sync runs the helper's sync once more: the first run is the full or
// incremental pre-copy, the next one (services stopped) copies what
// changed since the pre-copy started, by the ctime rule. A sync that takes
// long enough for the helper to report progress is shown as a volume copy
// (VolumeStart, VolumeBytes) from its start.
func (s *stager) sync(ctx context.Context, eng Engine, o Options, delta bool) (protocol.SyncStats, error) {
	var st protocol.SyncStats
	start := time.Now()
	shown := false
	stream := protocol.NewStream(func(p protocol.Progress) {
		if !shown {
			shown = true
			progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: s.vol.Name, Total: s.total, Time: start})
		}
		progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: s.vol.Name, Bytes: p.Bytes, Total: s.total})
	})
	code, out, err := eng.Exec(ctx, s.helper, engine.ExecSpec{Cmd: protocol.Argv(syncRequest(delta)), Output: stream})
	if err != nil {
		return st, err
	}
	if code != 0 {
		return st, fmt.Errorf("sync helper exited with code %d%s", code, tailOf(out))
	}
	if err := stream.Result(&st); err != nil {
		return st, err
	}
	if !delta {
		s.deferred = st.Deferred > 0
	}
	return st, nil
}

// unshare drops, once the staging copy is archived, the clones of the
// large files the delta-sync made (see syncRequest), so that the
// application's writes stop being copy-on-write until the next backup.
// It is a pre-copy pass: it also refreshes the small files and the index,
// which leaves the next pre-copy less to do.
func (s *stager) unshare(ctx context.Context, eng Engine, o Options) error {
	if !s.deferred {
		return nil
	}
	st, err := s.sync(ctx, eng, o, false)
	if err != nil {
		return err
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Volume: s.vol.Name, Message: fmt.Sprintf("dropped the staging copy's clones of %d large file(s) of %s, in %s", st.Unshared, s.vol.Name, st.Duration.Round(time.Millisecond))})
	return nil
}

func removeStagers(ctx context.Context, eng Engine, stagers []*stager) error {
	ids := make([]string, 0, len(stagers))
	for _, s := range stagers {
		ids = append(ids, s.helper)
		if s.file != nil {
			s.file.Discard()
		}
	}
	return removeHelpers(ctx, eng, ids...)
}

// archiveStaged writes the staging copy of one volume into the backup,
// with services already running again.
func archiveStaged(ctx context.Context, eng Engine, o Options, pending *archive.Pending, s *stager, v *archive.Volume) error {
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: o.LastSizes[v.Name]})
	if s.file != nil {
		// The large files' clones go as soon as each is archived: the
		// less time they share the source's blocks, the fewer of the
		// application's writes are copy-on-write.
		dropped, err := runPack(ctx, eng, o, s.helper, "/s/data", s.file, o.Level, v, s.deferred)
		s.file = nil
		if err == nil {
			progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: v.TarBytes, Total: v.ArchiveBytes, Message: viaHelper})
			if dropped > 0 {
				s.deferred = false // nothing left for unshare to drop
				progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Volume: v.Name, Message: fmt.Sprintf("dropped the staging copy's clones of %d large file(s) of %s as each was archived", dropped, v.Name)})
			}
			return nil
		}
		if !errors.Is(err, errNotShared) {
			return fmt.Errorf("archive %s: %w", v.Name, err)
		}
		progress.Send(o.Reporter, progress.Event{Kind: progress.Warning, Volume: v.Name, Message: "the helper no longer sees the backup folder; archiving " + v.Name + " through the engine's API"})
	}
	rc, err := eng.CopyFrom(ctx, s.helper, "/s/data/.")
	if err != nil {
		return fmt.Errorf("archive %s: read the staging copy: %w", v.Name, err)
	}
	defer rc.Close()
	err = pending.WriteVolume(ctx, v, rc, o.Level, func(n int64) {
		progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: v.Name, Bytes: n, Total: o.LastSizes[v.Name]})
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", v.Name, err)
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: v.TarBytes, Total: v.ArchiveBytes, Message: viaAPI})
	return nil
}
