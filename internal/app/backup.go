package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	autobackup "github.com/docker-autobackup/docker-autobackup"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Service runs the use cases (back up, prune, clean, the steps around a
// restore) for the CLI commands and the daemon alike. It prints nothing:
// what happens goes to Reporter as progress events, warnings included.
type Service struct {
	Engine   engine.Engine
	Reporter progress.Reporter
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Info reports a line worth showing (an Info event).
func (s *Service) Info(format string, a ...any) {
	progress.Send(s.Reporter, progress.Event{Kind: progress.Info, Time: s.now(), Message: fmt.Sprintf(format, a...)})
}

func (s *Service) warn(msg string) {
	progress.Send(s.Reporter, progress.Event{Kind: progress.Warning, Time: s.now(), Message: msg})
}

// BackupRequest is one backup to make.
type BackupRequest struct {
	Tag string
	// LockTimeout is how long to wait for another run of the project to
	// finish; negative means the lock_timeout setting.
	LockTimeout time.Duration
	// Holder names the command in the project lock ("run", "daemon").
	Holder string
	// Log, when set, returns what the run has reported so far as plain
	// text, for the body of a failure ping.
	Log func() string
}

// BackupOutcome is what a backup did.
type BackupOutcome struct {
	// Result is as far as the backup got (never nil once the project lock
	// was taken).
	Result *backup.Result
	// Interrupted: the context was cancelled (a signal).
	Interrupted bool
	// UploadErr, when set, says the backup is complete here but not on the
	// remote (it wraps ErrLocalOnly). The run is then a failure too.
	UploadErr error
}

// ErrLocalOnly marks a backup that was made but not uploaded.
var ErrLocalOnly = errors.New("the backup is local only")

// Backup makes one backup of p, top to bottom: the project lock, the
// start ping, the backup itself (backup.Run: services stopped and brought
// back), its record in the history, the report (notifications, pings,
// metrics), then, for a complete backup, the upload and retention (local,
// remote, orphaned staging volumes). The returned error is the backup's
// (a *compose.RestartError among it when services are not back); an
// upload failure is in the outcome's UploadErr, retention failures are
// warnings: the backup is safe either way.
//
// A run that fails before it stopped or wrote anything, in a project
// folder this program has never written to, leaves nothing behind there:
// no history, no lock file.
func (s *Service) Backup(ctx context.Context, p *Project, req BackupRequest) (*BackupOutcome, error) {
	fresh := !p.hasFiles()
	lock, err := p.lock(ctx, req.LockTimeout, req.Holder)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	s.PingStart(ctx, p)
	res, runErr := backup.Run(ctx, s.Engine, p.BackupOptions(s.Engine, req.Tag, s.Reporter))
	out := &BackupOutcome{Result: res, Interrupted: ctx.Err() != nil}
	runErr = Interrupted(ctx, "backup", runErr)
	if fresh && errors.Is(runErr, backup.ErrPreflight) {
		// Nothing was stopped and nothing written: keep the user's folder
		// as it was. The failure still goes to the configured channels.
		s.BackupNotStarted(ctx, p, runErr)
		if err := lock.Discard(); err != nil {
			s.warn(err.Error())
		}
		return out, runErr
	}
	if err := s.RecordRun(p, req.Tag, res, runErr, out.Interrupted); err != nil {
		runErr = errors.Join(runErr, err)
	}
	log := ""
	if req.Log != nil {
		log = req.Log()
	}
	ReportBackup(ctx, p, res, runErr, out.Interrupted, log, s.warn)
	if runErr != nil {
		return out, runErr
	}
	out.UploadErr = s.Upload(ctx, p)
	s.PruneAfterRun(ctx, p)
	return out, nil
}

// lock takes the project lock for command, waiting up to timeout, or the
// lock_timeout setting when timeout is negative.
func (e *Project) lock(ctx context.Context, timeout time.Duration, command string) (*state.Lock, error) {
	if timeout < 0 {
		timeout = e.Settings.LockTimeout
	}
	return state.Acquire(ctx, e.Dir, timeout, command)
}

// hasFiles reports whether this program has written into the project
// folder: its settings, history or lock file.
func (e *Project) hasFiles() bool {
	for _, name := range []string{state.FileName, state.HistoryName, state.LockFileName} {
		if _, err := os.Lstat(filepath.Join(e.Dir, name)); err == nil {
			return true
		}
	}
	return false
}

// BackupOptions is how every backup of the project runs: settings,
// compose extensions and hooks applied.
func (e *Project) BackupOptions(eng engine.Engine, tag string, r progress.Reporter) backup.Options {
	last, lastArchive := e.LastSizes()
	return backup.Options{
		Project:     e.Project,
		Dir:         e.BackupDir,
		Tag:         tag,
		Level:       ZstdLevel(e.Settings.CompressionLevel),
		Timeouts:    e.Timeouts(),
		Reporter:    r,
		ToolVersion: autobackup.Version(),
		LastSizes:   last,
		LastArchive: lastArchive,
		Host:        archive.Hostname(),
		Keep:        e.Keep(),
		SkipVolumes: e.SkipVolumes(),
		Services:    e.Ext.Services,
		Hooks:       backup.LifecycleHooks(eng),
		Mode:        e.Settings.Snapshot,
		NoDirect:    NoDirect(),
		Preflight:   e.RemotePreflight,
	}
}

// NoDirect says whether DOCKER_AUTOBACKUP_DIRECT=0 asks to move all data
// through the engine's API, never through a helper that writes into the
// backup folder itself (for engines that see the folder but must not
// write there).
func NoDirect() bool { return os.Getenv("DOCKER_AUTOBACKUP_DIRECT") == "0" }

// RecordRun writes the run into the history. Preflight failures (nothing
// stopped, nothing written) are recorded as failed runs too: a backup that
// silently did not happen is what we promise never to do.
func (s *Service) RecordRun(p *Project, tag string, res *backup.Result, runErr error, interrupted bool) error {
	b := state.Backup{
		ID:              res.ID,
		Tag:             tag,
		Started:         res.Started,
		Finished:        res.Finished,
		Status:          state.StatusSuccess,
		DurationSeconds: Round2(res.Finished.Sub(res.Started).Seconds()),
		DowntimeSeconds: Round2(res.Downtime.Seconds()),
		SizeBytes:       res.SizeBytes,
	}
	for _, w := range res.Warnings {
		b.Warnings = append(b.Warnings, text.OneLine(w))
	}
	for name, d := range res.ServiceDowntime {
		if b.ServiceDowntime == nil {
			b.ServiceDowntime = map[string]float64{}
		}
		b.ServiceDowntime[name] = Round2(d.Seconds())
	}
	for _, v := range res.Volumes {
		b.Volumes = append(b.Volumes, v.Name)
	}
	if res.Path != "" {
		b.Path = p.RelPath(res.Path)
	}
	if runErr != nil {
		b.Status = state.StatusFailed
		if interrupted {
			b.Status = state.StatusInterrupted
		}
		b.Error = text.OneLine(runErr.Error())
	}
	return state.Update(p.StatePath, func(f *state.File) error {
		f.RecordBackup(b)
		return nil
	})
}

// RecentBackup returns the newest complete successful backup and its age
// at now, judged by its manifest (the files must still be there).
func (e *Project) RecentBackup(now time.Time) (string, time.Duration, bool) {
	entries, err := e.Backups()
	if err != nil {
		return "", 0, false
	}
	for _, en := range entries {
		if en.Manifest == nil {
			continue
		}
		if b, ok := e.State.FindBackup(en.ID); ok && b.Status != state.StatusSuccess {
			continue
		}
		return en.ID, now.Sub(en.Manifest.Started), true
	}
	return "", 0, false
}

// ZstdLevel maps the compression_level setting (1 fastest, 2 default,
// 3 better, 4 best) to the zstd level the archive package takes.
func ZstdLevel(setting int) int {
	switch setting {
	case 1:
		return 1
	case 3:
		return 6
	case 4:
		return 10
	}
	return 3
}

// Round2 rounds to hundredths, as the history records seconds.
func Round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// LastSizes returns, for each volume, its uncompressed and its archive
// size at the newest backup of the project that has it (for progress
// estimates), from one listing of the backup folder.
func (e *Project) LastSizes() (tarBytes, archiveBytes map[string]int64) {
	tarBytes, archiveBytes = map[string]int64{}, map[string]int64{}
	entries, _ := e.Backups()
	for _, en := range entries {
		if en.Manifest == nil {
			continue
		}
		for _, v := range en.Manifest.Volumes {
			if _, ok := tarBytes[v.Name]; !ok {
				tarBytes[v.Name], archiveBytes[v.Name] = v.TarBytes, v.ArchiveBytes
			}
		}
	}
	return tarBytes, archiveBytes
}

// RestartFailed reports whether err says services are not back.
func RestartFailed(err error) (*compose.RestartError, bool) {
	var restart *compose.RestartError
	ok := errors.As(err, &restart)
	return restart, ok
}
