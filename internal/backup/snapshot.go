package backup

import (
	"context"
	"errors"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// A snapshotMethod copies the planned volumes into the pending backup. Run
// calls it in the phases of a run, in this order, each at most once:
//
//   - Prepare while the services still run: whatever can be done before the
//     stop (start helpers, copy while running). An error that is not a
//     cancellation means the method cannot be used here: Run cleans up and
//     falls back to the next method (see prepareSnapshot).
//   - Capture while the services are stopped: the part of the copy that is
//     downtime. Only after a successful Prepare.
//   - Finish after the services were started again: the rest of the work
//     (archive staging copies). Only after a successful Capture.
//   - Cleanup on every path, also after a failed Prepare, once the services
//     are back: it removes the method's helpers and unfinished files. It
//     survives a cancelled ctx.
//
// Volumes returns the volumes archived so far, in plan order, with their
// archive's sizes; Run reads it after Capture and after Finish.
type snapshotMethod interface {
	Prepare(ctx context.Context) error
	Capture(ctx context.Context) error
	Finish(ctx context.Context) error
	Cleanup(ctx context.Context) error
	Volumes() []archive.Volume
}

var (
	_ snapshotMethod = (*stagedSnapshot)(nil)
	_ snapshotMethod = (*directSnapshot)(nil)
	_ snapshotMethod = (*apiSnapshot)(nil)
)

// snapshotEnv is what every snapshot method works with.
type snapshotEnv struct {
	eng     Engine
	o       Options
	image   string // the helper image
	pending *archive.Pending
	vols    []PlannedVolume
	infos   map[string]engine.VolumeInfo // each volume as inspected before the stop
}

func (e *snapshotEnv) report(ev progress.Event) { progress.Send(e.o.Reporter, ev) }

// newVolume is the manifest entry of v, before its archive is written.
func (e *snapshotEnv) newVolume(v PlannedVolume) archive.Volume {
	av := archive.Volume{Name: v.Name, Key: v.Key, External: v.External}
	if info, ok := e.infos[v.Name]; ok {
		av.Driver, av.DriverOpts, av.Labels = info.Driver, info.Options, info.Labels
	}
	return av
}

// archived collects the volumes a method has archived.
type archived struct{ done []archive.Volume }

func (a *archived) add(v archive.Volume)      { a.done = append(a.done, v) }
func (a *archived) Volumes() []archive.Volume { return a.done }

// prepareSnapshot prepares the method for mode (as ChooseMode chose it,
// for why), falling back when one cannot be used: staged to the stream
// method with a warning, and within the stream method a helper writing
// next to the data to the engine's API with a warning. It returns the
// prepared method and the mode and reason that hold in the end. An error
// means ctx was cancelled; nothing is left behind then.
func prepareSnapshot(ctx context.Context, env *snapshotEnv, mode, why string, img engine.HelperImage) (snapshotMethod, string, string, error) {
	warn := func(msg string) { env.report(progress.Event{Kind: progress.Warning, Message: msg}) }
	if mode == ModeStream && env.o.Mode != ModeStream {
		warn("staged snapshot not possible: " + why + "; using the stream method: services stay down for the whole copy")
	}
	if mode == ModeStaged {
		m := &stagedSnapshot{snapshotEnv: env}
		err := m.Prepare(ctx)
		if err == nil {
			return m, mode, why, nil
		}
		_ = m.Cleanup(ctx)
		if ctx.Err() != nil {
			return nil, mode, why, err
		}
		warn("staged snapshot not possible (" + err.Error() + "); falling back to the stream method: services stay down for the whole copy")
		mode, why = ModeStream, "fallback: "+err.Error()
	}
	if directAllowed(img, env.o.NoDirect) {
		m := &directSnapshot{snapshotEnv: env}
		err := m.Prepare(ctx)
		if err == nil {
			return m, mode, why, nil
		}
		err = errors.Join(err, m.Cleanup(ctx))
		if ctx.Err() != nil {
			return nil, mode, why, err
		}
		warn("copying through the engine's API, which is slower: " + err.Error())
	}
	return &apiSnapshot{snapshotEnv: env}, mode, why, nil
}

// apiSnapshot copies each volume through the engine's API while the
// services are stopped, from a helper that is created with the volume
// mounted and never started: the stream method where no helper can run
// our code or see the backup folder.
type apiSnapshot struct {
	*snapshotEnv
	archived
}

func (s *apiSnapshot) Prepare(ctx context.Context) error { return nil }

func (s *apiSnapshot) Capture(ctx context.Context) error {
	for _, v := range s.vols {
		av := s.newVolume(v)
		if err := snapshotVolume(ctx, s.eng, s.o, s.image, s.pending, &av, s.infos[v.Name], s.o.LastSizes[v.Name]); err != nil {
			return err
		}
		s.add(av)
	}
	return nil
}

func (s *apiSnapshot) Finish(ctx context.Context) error  { return nil }
func (s *apiSnapshot) Cleanup(ctx context.Context) error { return nil }
