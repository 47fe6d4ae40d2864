package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
)

// ErrNoRemote is what the remote use cases return for a project without
// a remote target; it is an ErrConfig.
var ErrNoRemote = configError(errors.New("no remote target; set one with docker autobackup config set remote.url s3://bucket/prefix"))

// target opens the project's remote target, reporting to the service's
// reporter; ErrNoRemote without one.
func (s *Service) target(p *Project) (*remote.Target, error) {
	t, err := p.OpenTarget()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, ErrNoRemote
	}
	t.Reporter = s.Reporter
	return t, nil
}

// RemoteBackups lists the project's complete backups on the remote
// target, newest first; with all, those of every project and host in the
// bucket.
func (s *Service) RemoteBackups(ctx context.Context, p *Project, all bool) ([]remote.Listed, error) {
	t, err := s.target(p)
	if err != nil {
		return nil, err
	}
	if all {
		return remote.ListAll(ctx, t.Store)
	}
	return t.List(ctx)
}

// VerifyRemoteRequest names what VerifyRemote checks: one backup by ID
// (archive.Latest for the newest), or All of them.
type VerifyRemoteRequest struct {
	ID  string
	All bool
	// Identity is the --identity file; "" for the settings' or none.
	Identity string
}

// RemoteVerified is the check of one backup on the remote target.
type RemoteVerified struct {
	ID string
	// Err: the backup could not be checked at all (no index, unreadable).
	Err error
	// Checks has one entry per object, its error nil when it matched.
	Checks []remote.Check
	// IndexOnly: encrypted and no identity given, so the objects were
	// compared with the index only, not with the manifest's checksums.
	IndexOnly bool
}

// VerifyRemote re-reads the requested backups on the remote target and
// compares every object with what the index (and, where it can be read,
// the manifest) says. An error means nothing could be checked; what was
// found is in the results.
func (s *Service) VerifyRemote(ctx context.Context, p *Project, req VerifyRemoteRequest) ([]RemoteVerified, error) {
	t, err := s.target(p)
	if err != nil {
		return nil, err
	}
	ids, err := p.Identities(req.Identity)
	if err != nil {
		return nil, err
	}
	var todo []string
	switch {
	case req.All:
		listed, err := t.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, l := range listed {
			todo = append(todo, l.ID)
		}
		if len(todo) == 0 {
			return nil, fmt.Errorf("no backups on %s", t.Store)
		}
	case req.ID == archive.Latest || req.ID == "":
		latest, err := t.Latest(ctx)
		if err != nil {
			return nil, err
		}
		todo = []string{latest}
	default:
		todo = []string{req.ID}
	}
	out := make([]RemoteVerified, 0, len(todo))
	for _, id := range todo {
		v := RemoteVerified{ID: id}
		v.Checks, v.IndexOnly, v.Err = t.Verify(ctx, id, ids)
		out = append(out, v)
	}
	return out, nil
}

// DownloadRequest names a backup to fetch from the remote target.
type DownloadRequest struct {
	// From is the project whose backup it is: p's own name, or another's
	// (restore --from-project).
	From string
	// ID is a full backup ID, or archive.Latest (or "") for the newest
	// one on the remote.
	ID string
	// Identity is the --identity file; "" for the settings' or none.
	Identity string
}

// Download makes a backup of the remote target a local one, in the
// project's backup folder, and returns its manifest and folder; a backup
// that is already there is not fetched again. Each archive is decrypted
// and checked while it is written. Nothing is stopped, so a missing or
// wrong identity fails here, before a restore changes anything.
func (s *Service) Download(ctx context.Context, p *Project, req DownloadRequest) (*archive.Manifest, string, error) {
	t, err := s.target(p)
	if err != nil {
		return nil, "", err
	}
	from := req.From
	if from == "" {
		from = p.Project.Name
	}
	if from != p.Project.Name {
		t.Folder = remote.Folder(from, p.RemoteConfig().Host)
	}
	id := req.ID
	if id == "" || id == archive.Latest {
		if id, err = t.Latest(ctx); err != nil {
			return nil, "", err
		}
	}
	if m, path, err := archive.Open(p.BackupDir, from, id); err == nil {
		return m, path, nil // already here
	}
	ids, err := p.Identities(req.Identity)
	if err != nil {
		return nil, "", err
	}
	s.Info("downloading backup %s from %s into %s", id, t.Store, p.RelPath(p.BackupDir))
	m, path, err := t.Download(ctx, id, p.BackupDir, ids)
	if err != nil {
		return nil, "", fmt.Errorf("%w; nothing was stopped", err)
	}
	return m, path, nil
}
