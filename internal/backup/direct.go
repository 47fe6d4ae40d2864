package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/helper/protocol"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
)

// The direct path: a helper running this plugin's binary reads the volume
// and writes the compressed archive itself, into the backup directory that
// is bind-mounted into it (and, for a restore, reads the archive from
// there). The data then never crosses the engine's API, which costs a tar
// stream through the engine, a copy into this process and, for a restore,
// the engine's own untar. It needs the engine to see the plugin's folders:
// a local engine, or Docker Desktop with the folder shared. Otherwise (a
// remote engine, a VM without the share, rootless or userns-remapped
// engines that cannot write there) the helper says so before anything is
// stopped, and the copy goes through the API as before.

// How a volume's data moved, for the "copied" lines.
const (
	viaHelper = "next to the data"
	viaAPI    = "through the engine's API"
)

// outDir is where a helper sees the partial backup directory.
const outDir = "/out"

// errNotShared means a helper did not see the plugin's folder.
var errNotShared = errors.New("the engine does not see this machine's backup folder")

// packer is a serving helper that archives one volume directly into the
// pending backup.
type packer struct {
	helper string
	file   *archive.DirectFile
}

func packRequest(src string, f *archive.DirectFile, level int, probe bool) *protocol.Pack {
	return &protocol.Pack{Token: f.Token, Level: level, Probe: probe, Src: src, File: outDir + "/" + f.TempName()}
}

// directAllowed says whether to try the direct path at all.
func directAllowed(img engine.HelperImage, off bool) bool { return img.CanRun && !off }

// directSnapshot is the stream method with the direct path: before the
// stop, one serving helper per volume with the volume mounted read-only
// and the partial backup directory bound into it; while the services are
// stopped each archives its volume next to the data, with an exec.
type directSnapshot struct {
	*snapshotEnv
	archived
	packers []*packer
	removed chan error // the removal Finish started
}

// Prepare starts the helpers and checks that each sees its archive file,
// so that once the services are stopped the copy is an exec, not a
// container start. On any error the caller copies through the API.
func (s *directSnapshot) Prepare(ctx context.Context) error {
	for _, v := range s.vols {
		f, err := s.pending.Direct(v.Name)
		if err != nil {
			return err
		}
		id, err := createOnVolume(ctx, s.eng, engine.HelperSpec{Image: s.image, Project: s.o.Project.Name,
			Mounts: []engine.Mount{{Volume: v.Name, Target: "/v", ReadOnly: true}},
			Binds:  []engine.Bind{{Source: s.pending.Path(), Target: outDir}},
			Cmd:    protocol.Argv(&protocol.Serve{})}, s.infos[v.Name])
		if err != nil {
			f.Discard()
			return notShared(err)
		}
		p := &packer{helper: id, file: f}
		s.packers = append(s.packers, p)
		if err := s.eng.StartContainer(ctx, id); err != nil {
			return notShared(err)
		}
		if err := probe(ctx, s.eng, id, "/v", f); err != nil {
			return err
		}
	}
	return nil
}

// Capture archives each volume with its helper, falling back to the API
// for a volume whose helper no longer sees its file.
func (s *directSnapshot) Capture(ctx context.Context) error {
	for i, v := range s.vols {
		av := s.newVolume(v)
		if err := packVolume(ctx, s.eng, s.o, s.image, s.pending, s.packers[i], &av, s.infos[v.Name], s.o.LastSizes[v.Name]); err != nil {
			return err
		}
		s.add(av)
	}
	return nil
}

// Finish starts removing the helpers, whose files are finished or
// discarded by now: they go while the archives are fsynced.
func (s *directSnapshot) Finish(ctx context.Context) error {
	ps := s.packers
	s.packers = nil
	s.removed = make(chan error, 1)
	go func() { s.removed <- removePackers(ctx, s.eng, ps) }()
	return nil
}

// Cleanup removes the helpers, or waits for the removal Finish started.
func (s *directSnapshot) Cleanup(ctx context.Context) error {
	if s.removed != nil {
		err := <-s.removed
		s.removed = nil
		return err
	}
	ps := s.packers
	s.packers = nil
	return removePackers(ctx, s.eng, ps)
}

// notShared reads an engine's refusal of a bind mount (its source path does
// not exist there) as errNotShared, keeping the engine's words.
func notShared(err error) error {
	return fmt.Errorf("%w (%w)", errNotShared, err)
}

// helperOutcome reads how a pack or unpack helper ended: errNotShared for
// its "not shared" exit code, an error with its output for any other
// failure, and otherwise its JSON result into res (unless res is nil).
func helperOutcome(code int, out string, err error, res any) error {
	switch {
	case err != nil:
		return err
	case code == protocol.ExitNotShared:
		return errNotShared
	case code != 0:
		return fmt.Errorf("the helper exited with code %d%s", code, tailOf(out))
	case res != nil:
		return protocol.ReadResult(out, res)
	}
	return nil
}

// probe checks, with an exec into a serving helper, that it sees f.
func probe(ctx context.Context, eng Engine, id, src string, f *archive.DirectFile) error {
	code, out, err := eng.Exec(ctx, id, engine.ExecSpec{Cmd: protocol.Argv(packRequest(src, f, 0, true))})
	err = helperOutcome(code, out, err, nil)
	if err != nil && !errors.Is(err, errNotShared) {
		err = fmt.Errorf("check the helper's view of the backup folder: %w", err)
	}
	return err
}

// runPack archives src inside the serving helper id into f and adopts the
// result into v. errNotShared means the helper did not see f (it then
// read and removed nothing); f is then discarded and the caller copies
// through the API. With drop the helper removes each large file from src
// once it is archived (protocol.Pack.DropLarge); it returns how many.
func runPack(ctx context.Context, eng Engine, o Options, id, src string, f *archive.DirectFile, level int, v *archive.Volume, drop bool) (int, error) {
	stop := watchArchive(o, v.Name, f)
	req := packRequest(src, f, level, false)
	req.DropLarge = drop
	code, out, err := eng.Exec(ctx, id, engine.ExecSpec{Cmd: protocol.Argv(req)})
	stop()
	var res protocol.PackResult
	err = helperOutcome(code, out, err, &res)
	if err == nil {
		err = f.Finish(v, res)
	}
	if err != nil {
		f.Discard()
		return 0, err
	}
	return res.Dropped, nil
}

// watchArchive reports the growth of the archive a helper writes straight
// into the backup folder, which is all the plugin sees of that copy, until
// the returned function is called.
func watchArchive(o Options, volume string, f *archive.DirectFile) (stop func()) {
	if o.Reporter == nil {
		return func() {}
	}
	return everyTick(func() {
		if n := f.Written(); n > 0 {
			progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: volume, Bytes: n, Total: o.LastArchive[volume], Archive: true})
		}
	})
}

// tickEvery is how often a copy the plugin cannot follow byte by byte is
// reported.
const tickEvery = 250 * time.Millisecond

// everyTick calls fn every tickEvery until the returned function is
// called; that waits for a call under way to return.
func everyTick(fn func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// packVolume copies one volume with a packer while the services are
// stopped, falling back to the API when the helper does not see the file.
func packVolume(ctx context.Context, eng Engine, o Options, image string, pending *archive.Pending, p *packer, v *archive.Volume, before engine.VolumeInfo, expected int64) error {
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: expected})
	_, err := runPack(ctx, eng, o, p.helper, "/v", p.file, o.Level, v, false)
	if errors.Is(err, errNotShared) {
		progress.Send(o.Reporter, progress.Event{Kind: progress.Info, Volume: v.Name, Message: "the helper no longer sees the backup folder; copying " + v.Name + " through the engine's API"})
		return snapshotVolume(ctx, eng, o, image, pending, v, before, expected)
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", v.Name, err)
	}
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeDone, Volume: v.Name, Bytes: v.TarBytes, Total: v.ArchiveBytes, Message: viaHelper})
	return nil
}

func removePackers(ctx context.Context, eng Engine, packers []*packer) error {
	ids := make([]string, 0, len(packers))
	for _, p := range packers {
		ids = append(ids, p.helper)
		p.file.Discard()
	}
	return removeHelpers(ctx, eng, ids...)
}

// removeHelpers removes helpers, also after ctx was cancelled.
func removeHelpers(ctx context.Context, eng Engine, ids ...string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, id := range ids {
		errs = append(errs, eng.RemoveHelper(rctx, id))
	}
	return errors.Join(errs...)
}
