package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/crypt"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
	"github.com/docker-autobackup/docker-autobackup/internal/size"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// identityEnv names the identity file when neither --identity nor
// remote.identity_file does.
const identityEnv = "AUTOBACKUP_IDENTITY_FILE"

// remoteConfig is the project's effective [remote].
func (e *Project) RemoteConfig() state.RemoteResolved {
	return e.State.Remote.Resolve(e.ComposeRemote)
}

// hasRemote says whether a remote target is configured.
func (e *Project) HasRemote() bool { return e.RemoteConfig().URL != "" }

// openStore returns the configured store; nil without a remote.
func (e *Project) OpenStore() (remote.Store, error) {
	rc := e.RemoteConfig()
	if rc.URL == "" {
		return nil, nil
	}
	if e.Store != nil {
		return e.Store, nil
	}
	bucket, prefix, err := remote.ParseURL(rc.URL)
	if err != nil {
		return nil, configError(err)
	}
	s, err := remote.NewS3(remote.S3Config{
		Bucket: bucket, Prefix: prefix, Endpoint: rc.Endpoint, Region: rc.Region, PathStyle: rc.PathStyle,
		AccessKeyFile: e.Abs(rc.AccessKeyFile), SecretKeyFile: e.Abs(rc.SecretKeyFile), SessionTokenFile: e.Abs(rc.SessionTokenFile),
	})
	if err != nil {
		return nil, configError(err)
	}
	return s, nil
}

// openTarget returns the project's remote target, with its recipients;
// nil without a remote.
func (e *Project) OpenTarget() (*remote.Target, error) {
	s, err := e.OpenStore()
	if s == nil || err != nil {
		return nil, err
	}
	rc := e.RemoteConfig()
	rs, err := crypt.ParseRecipients(rc.EncryptTo, e.Dir)
	if err != nil {
		return nil, configError(fmt.Errorf("remote.encrypt_to: %w", err))
	}
	host, _ := os.Hostname()
	if rc.Host != "" {
		host = rc.Host
	}
	return &remote.Target{Store: s, Folder: remote.Folder(e.Project.Name, rc.Host), Recipients: rs, Host: host}, nil
}

func (e *Project) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Dir, p)
}

// identities loads the identity from --identity, remote.identity_file or
// AUTOBACKUP_IDENTITY_FILE, in that order; none is no identities.
func (e *Project) Identities(flag string) ([]age.Identity, error) {
	path := flag
	if path == "" {
		path = e.Abs(e.RemoteConfig().IdentityFile)
	}
	if path == "" {
		path = os.Getenv(identityEnv)
	}
	if path == "" {
		return nil, nil
	}
	ids, err := crypt.LoadIdentities(path)
	if err != nil {
		return nil, configError(err)
	}
	return ids, nil
}

// remotePreflight runs before anything is stopped: the configuration
// parses and the bucket is reachable and writable with these credentials.
func (e *Project) RemotePreflight(ctx context.Context) error {
	t, err := e.OpenTarget()
	if t == nil || err != nil {
		return err
	}
	if err := t.Store.Check(ctx); err != nil {
		return fmt.Errorf("%w; the backup would be local only, so nothing was done (fix it, or remove the remote: docker autobackup config unset remote.url)", err)
	}
	return nil
}

// Push uploads what the remote lacks (see Upload), holding the project
// lock; lockTimeout negative means the lock_timeout setting.
func (s *Service) Push(ctx context.Context, env *Project, lockTimeout time.Duration) error {
	lock, err := env.lock(ctx, lockTimeout, "push")
	if err != nil {
		return err
	}
	defer lock.Release()
	return s.Upload(ctx, env)
}

// Upload is the upload step after a run (and all of push): every complete
// local backup of the project that the remote lacks is uploaded, newest
// first, and its record in the history gets the outcome. With no remote
// it does nothing. A failure leaves the local backups as they are and
// returns an error wrapping ErrLocalOnly that says which backups are local
// only and why.
func (s *Service) Upload(ctx context.Context, env *Project) error {
	t, err := env.OpenTarget()
	if t == nil || err != nil {
		return err
	}
	t.Reporter = s.Reporter
	all, err := env.Backups()
	if err != nil {
		return err
	}
	// Only this project's backups taken here: another host's backups of
	// a project of the same name in a shared folder are that host's to
	// upload.
	var entries []archive.Entry
	for _, e := range all {
		if h := e.Host(); h == "" || h == archive.Hostname() {
			entries = append(entries, e)
		}
	}
	listed, err := t.List(ctx)
	if err != nil {
		return recordUploads(env, localIDs(env, entries), fmt.Errorf("%w: %s: %w", ErrLocalOnly, t.Store, err))
	}
	have := map[string]bool{}
	for _, l := range listed {
		if l.Err == nil {
			have[l.ID] = true
		}
	}
	f, err := state.Load(env.StatePath)
	if err != nil {
		return err
	}
	var todo []archive.Entry
	for _, e := range entries {
		if e.Manifest == nil || e.Manifest.Project != env.Project.Name || have[e.ID] {
			continue
		}
		if b, ok := f.FindBackup(e.ID); ok && !b.RemotePruned.IsZero() {
			continue // remote retention deleted it there on purpose
		}
		todo = append(todo, e)
	}
	if len(todo) > 0 && len(t.Recipients) == 0 {
		s.warn(fmt.Sprintf("uploads to %s are not encrypted; manifests hold volume driver options (passwords of CIFS volumes, for example). Encrypt them: docker autobackup config set remote.encrypt_to AGE-PUBLIC-KEY", t.Store))
	}
	var done []string
	for i, e := range todo {
		idx, err := t.Upload(ctx, e.Path, e.Manifest)
		if err != nil {
			var rest []string
			for _, r := range todo[i:] {
				rest = append(rest, r.ID)
			}
			_ = recordUploads(env, done, nil)
			return recordUploads(env, rest, fmt.Errorf("%w: %s not uploaded to %s: %w", ErrLocalOnly, strings.Join(rest, ", "), t.Store, err))
		}
		done = append(done, e.ID)
		enc := ""
		if idx.Encrypted {
			enc = ", encrypted"
		}
		s.Info("uploaded %s to %s (%s%s)", e.ID, t.Store, size.Format(idx.SizeBytes), enc)
	}
	return recordUploads(env, done, nil)
}

func localIDs(env *Project, entries []archive.Entry) []string {
	var ids []string
	for _, e := range entries {
		if e.Manifest != nil && e.Manifest.Project == env.Project.Name {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// recordUploads marks ids uploaded (upErr nil) or failed, and returns
// upErr joined with any error writing the state file.
func recordUploads(env *Project, ids []string, upErr error) error {
	if len(ids) == 0 {
		return upErr
	}
	status, msg := state.UploadDone, ""
	if upErr != nil {
		status, msg = state.UploadFailed, text.OneLine(upErr.Error())
	}
	err := state.Update(env.StatePath, func(f *state.File) error {
		for _, id := range ids {
			if b, ok := f.FindBackup(id); ok && (upErr == nil || b.Remote != state.UploadDone) {
				f.RecordUpload(id, status, msg)
			}
		}
		return nil
	})
	return errors.Join(upErr, err)
}
