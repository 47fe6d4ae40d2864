package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// Project is what most commands need: the loaded project, its state
// file and effective settings.
type Project struct {
	Project   *types.Project
	Dir       string // project working directory
	StatePath string
	State     *state.File
	Settings  state.Resolved
	BackupDir string // absolute
	Ext       *compose.Extensions
	Compose   state.Settings // project-level x-autobackup defaults
	// ComposeRemote is remote: under the top-level x-autobackup.
	ComposeRemote state.Remote
	// Store, when set, replaces the configured remote store (tests).
	Store remote.Store
}

// Load loads the compose project that opts select and its settings and
// history. A state file that cannot be parsed is an error: it is never
// overwritten.
func Load(ctx context.Context, opts compose.Options) (*Project, error) {
	p, err := compose.Load(ctx, opts)
	if err != nil {
		return nil, err
	}
	env := &Project{Project: p, Dir: p.WorkingDir}
	env.StatePath = filepath.Join(env.Dir, state.FileName)
	f, err := state.Load(env.StatePath)
	if err != nil {
		return nil, err
	}
	env.State = f
	if env.Ext, err = compose.ParseExtensions(p); err != nil {
		return nil, err
	}
	if raw, ok := env.Ext.Project["remote"]; ok {
		if env.ComposeRemote, err = state.RemoteFromMap(raw); err != nil {
			return nil, fmt.Errorf("%w: top-level %s: %w", compose.ErrInvalidProject, compose.ExtensionKey, err)
		}
		rest := map[string]any{}
		for k, v := range env.Ext.Project {
			if k != "remote" {
				rest[k] = v
			}
		}
		env.Ext.Project = rest
	}
	if env.Ext.Project != nil {
		if env.Compose, err = state.SettingsFromMap(env.Ext.Project, env.Dir); err != nil {
			return nil, fmt.Errorf("%w: top-level %s: %w", compose.ErrInvalidProject, compose.ExtensionKey, err)
		}
	}
	env.Settings = f.Settings.Resolve(env.Compose)
	env.BackupDir = env.Settings.BackupDir(env.Dir)
	if !filepath.IsAbs(env.BackupDir) {
		if env.BackupDir, err = filepath.Abs(env.BackupDir); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// backups lists this project's complete backups in its backup directory,
// newest first. The folder may be shared with other projects: their
// backups are never seen here (see archive.List).
//
// A backup whose manifest is too damaged to name its project counts as
// this project's when this project's history records its ID.
func (e *Project) Backups() ([]archive.Entry, error) {
	all, err := archive.ListAll(e.BackupDir)
	if err != nil {
		return nil, fmt.Errorf("read backup directory %s: %w", e.BackupDir, err)
	}
	var out []archive.Entry
	for _, en := range all {
		if en.Project == e.Project.Name {
			out = append(out, en)
		} else if _, ours := e.State.FindBackup(en.ID); ours && en.Project == "" {
			out = append(out, en)
		}
	}
	return out, nil
}

// unattributed counts the backups in the folder whose manifest is too
// damaged to say which project they belong to (and that no history here
// claims): no project lists or prunes them.
func (e *Project) Unattributed() int {
	all, _ := archive.ListAll(e.BackupDir)
	n := 0
	for _, en := range all {
		if _, ours := e.State.FindBackup(en.ID); en.Project == "" && !ours {
			n++
		}
	}
	return n
}

// timeouts returns the lifecycle timeouts from the settings.
func (e *Project) Timeouts() compose.Timeouts {
	s := e.Settings
	return compose.Timeouts{Stop: s.StopTimeout, Start: s.StartTimeout, Health: s.HealthTimeout, Poll: s.PollInterval}
}

// keep returns the services configured not to be stopped, with the reason.
func (e *Project) Keep() map[string]string {
	out := map[string]string{}
	for name, o := range e.Ext.Services {
		if !o.Stop {
			out[name] = "x-autobackup stop: false"
		}
	}
	return out
}

// skipVolumes returns the volume keys configured not to be backed up.
func (e *Project) SkipVolumes() map[string]string {
	out := map[string]string{}
	for key, o := range e.Ext.Volumes {
		if o.Skip {
			out[key] = "x-autobackup skip: true"
		}
	}
	return out
}

// relPath shows path relative to the project directory when it is inside.
func (e *Project) RelPath(path string) string {
	if rel, err := filepath.Rel(e.Dir, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}

// ErrConfig marks an error the user fixes in the settings (or the compose
// file's x-autobackup): a remote URL that does not parse, an identity file
// that does not load, retention rules that do not go together.
var ErrConfig = errors.New("invalid configuration")

type configErr struct{ err error }

func (e configErr) Error() string   { return e.err.Error() }
func (e configErr) Unwrap() []error { return []error{e.err, ErrConfig} }

func configError(err error) error { return configErr{err} }
