package app

import (
	"context"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/engine"
)

// Clean removes what interrupted or crashed runs left behind, holding the
// project lock so that nothing a running backup of the project uses goes:
// the project's helper containers and staging volumes, staging volumes of
// any project whose volume is gone, helper images this installation
// imported for earlier builds, and partial backups no running backup owns.
// It returns what it removed, each as a phrase ("helper container …").
func (s *Service) Clean(ctx context.Context, p *Project) ([]string, error) {
	lock, err := p.lock(ctx, 0, "clean")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	eng := s.Engine
	removed, err := eng.CleanProject(ctx, p.Project.Name)
	if err == nil {
		// Helper images of earlier plugin builds (one per upgrade).
		var imgs []string
		var img engine.HelperImage
		if img, err = eng.HelperImage(ctx); err == nil {
			imgs, err = eng.CleanHelperImages(ctx, img.Ref)
			removed = append(removed, imgs...)
		}
	}
	if err == nil {
		var orphans []string
		orphans, err = eng.CollectStaging(ctx)
		for _, v := range orphans {
			removed = append(removed, "staging volume "+v+" (its volume no longer exists)")
		}
	}
	if err != nil {
		return removed, err
	}
	partials, err := archive.CleanPartials(p.BackupDir)
	for _, path := range partials {
		removed = append(removed, "partial backup "+p.RelPath(path))
	}
	return removed, err
}
