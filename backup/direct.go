package backup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/helper"
	"github.com/docker-autobackup/docker-autobackup/progress"
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

func packCommand(src string, f *archive.DirectFile, level int, probe bool) []string {
	cmd := []string{"/autobackup", helper.Arg, "pack", "--token", f.Token}
	if level != 0 {
		cmd = append(cmd, "--level", strconv.Itoa(level))
	}
	if probe {
		cmd = append(cmd, "--probe")
	}
	return append(cmd, src, outDir+"/"+f.TempName())
}

// directAllowed says whether to try the direct path at all.
func directAllowed(img HelperImage, off bool) bool { return img.CanRun && !off }

// startPackers creates and starts, before the stop, one helper per volume
// with the volume mounted read-only at /v and the partial backup directory
// at /out, and checks that each sees its archive file. Once the services
// are stopped the copy is then an exec, not a container start. On any
// error nothing is left behind and the caller copies through the API.
func startPackers(ctx context.Context, eng Engine, o Options, image string, pending *archive.Pending, vols []PlannedVolume, infos map[string]VolumeInfo) (packers []*packer, err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, removePackers(ctx, eng, packers))
			packers = nil
		}
	}()
	for _, v := range vols {
		f, err := pending.Direct(v.Name)
		if err != nil {
			return packers, err
		}
		id, err := createOnVolume(ctx, eng, HelperSpec{Image: image, Project: o.Project.Name,
			Mounts: []Mount{{Volume: v.Name, Target: "/v", ReadOnly: true}},
			Binds:  []Bind{{Source: pending.Path(), Target: outDir}},
			Cmd:    []string{"/autobackup", helper.Arg, "serve"}}, infos[v.Name])
		if err != nil {
			f.Discard()
			return packers, notShared(err)
		}
		p := &packer{helper: id, file: f}
		packers = append(packers, p)
		if err := eng.StartContainer(ctx, id); err != nil {
			return packers, notShared(err)
		}
		if err := probe(ctx, eng, id, "/v", f); err != nil {
			return packers, err
		}
	}
	return packers, nil
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
	case code == helper.ExitNotShared:
		return errNotShared
	case code != 0:
		return fmt.Errorf("the helper exited with code %d%s", code, tailOf(out))
	case res != nil:
		return lastJSON(out, res)
	}
	return nil
}

// probe checks, with an exec into a serving helper, that it sees f.
func probe(ctx context.Context, eng Engine, id, src string, f *archive.DirectFile) error {
	code, out, err := eng.Exec(ctx, id, ExecSpec{Cmd: packCommand(src, f, 0, true)})
	err = helperOutcome(code, out, err, nil)
	if err != nil && !errors.Is(err, errNotShared) {
		err = fmt.Errorf("check the helper's view of the backup folder: %w", err)
	}
	return err
}

// runPack archives src inside the serving helper id into f and adopts the
// result into v. errNotShared means the helper did not see f; f is then
// discarded and the caller copies through the API.
func runPack(ctx context.Context, eng Engine, o Options, id, src string, f *archive.DirectFile, level int, v *archive.Volume) error {
	stop := watchArchive(o, v.Name, f)
	code, out, err := eng.Exec(ctx, id, ExecSpec{Cmd: packCommand(src, f, level, false)})
	stop()
	var res archive.PackResult
	err = helperOutcome(code, out, err, &res)
	if err == nil {
		err = f.Finish(v, res)
	}
	if err != nil {
		f.Discard()
		return err
	}
	return nil
}

// watchArchive reports the growth of the archive a helper writes straight
// into the backup folder, which is all the plugin sees of that copy, until
// the returned function is called.
func watchArchive(o Options, volume string, f *archive.DirectFile) (stop func()) {
	if o.Reporter == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if n := f.Written(); n > 0 {
					progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeBytes, Volume: volume, Bytes: n, Total: o.LastArchive[volume], Archive: true})
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// packVolume copies one volume with a packer while the services are
// stopped, falling back to the API when the helper does not see the file.
func packVolume(ctx context.Context, eng Engine, o Options, image string, pending *archive.Pending, p *packer, v *archive.Volume, before VolumeInfo, expected int64) error {
	progress.Send(o.Reporter, progress.Event{Kind: progress.VolumeStart, Volume: v.Name, Total: expected})
	err := runPack(ctx, eng, o, p.helper, "/v", p.file, o.Level, v)
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
