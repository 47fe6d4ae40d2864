package app

import (
	"context"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Verified is the outcome of verifying one backup: its archives' checks,
// or why its manifest could not be read.
type Verified struct {
	ID       string
	Manifest error // the manifest is unreadable: nothing else was checked
	Checks   []archive.Check
}

// Verify reads every archive of each backup in entries back and checks it
// against its manifest, and records the outcome in the history (so that
// retention no longer counts a corrupt backup as a keeper). A failure to
// record is returned with the results; an interrupted verify records
// nothing.
func (s *Service) Verify(ctx context.Context, p *Project, entries []archive.Entry, safety archive.SafetyOptions) ([]Verified, error) {
	var out []Verified
	results := map[string]string{} // backup ID -> what is wrong, "" when sound
	for _, e := range entries {
		if e.Manifest == nil {
			out = append(out, Verified{ID: e.ID, Manifest: e.Err})
			continue
		}
		progress.Send(s.Reporter, progress.Event{Kind: progress.Phase, Message: "verify"})
		v := Verified{ID: e.ID, Checks: archive.VerifyProgress(ctx, e.Path, e.Manifest, safety, s.Reporter)}
		results[e.ID] = ""
		for _, c := range v.Checks {
			if c.Err != nil && results[e.ID] == "" {
				results[e.ID] = text.OneLine(c.Err.Error())
			}
		}
		out = append(out, v)
	}
	if ctx.Err() != nil {
		return out, nil
	}
	return out, s.recordVerify(ctx, p, results)
}

// recordVerify stores the outcome of a verify in the backups' records. It
// takes the project lock for the update only, and gives up rather than
// wait longer than the lock_timeout setting.
func (s *Service) recordVerify(ctx context.Context, p *Project, results map[string]string) error {
	known := false
	for id := range results {
		if _, ok := p.State.FindBackup(id); ok {
			known = true
		}
	}
	if !known {
		return nil
	}
	lock, err := p.lock(ctx, -1, "verify")
	if err != nil {
		return err
	}
	defer lock.Release()
	now := s.now().UTC().Truncate(time.Second)
	return state.Update(p.StatePath, func(f *state.File) error {
		for id, problem := range results {
			b, ok := f.FindBackup(id)
			if !ok {
				continue
			}
			b.VerifyError = problem
			if problem == "" {
				b.Verified = now
			}
		}
		return nil
	})
}
