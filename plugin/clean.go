package plugin

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/engine"
	"github.com/docker-autobackup/docker-autobackup/state"
)

func newCleanCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove leftovers: helper containers and old helper images, staging volumes, partial backups",
		Long: `Remove what an interrupted or crashed run may have left behind: helper
containers (labelled io.docker-autobackup.helper), the project's staging
volumes, staging volumes of any project whose volume no longer exists,
helper images this installation imported for earlier plugin builds (never
another installation's, never one a container uses), and partial backup
directories (.partial-*) in the backup directory that no running backup
owns, of any project sharing the folder. Complete backups are never
touched. Takes the project lock, so it never removes what a running
backup of this project is using.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClean(cmd.Context(), dockerCli, g)
		},
	}
}

func runClean(ctx context.Context, dockerCli command.Cli, g *globalOptions) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		return err
	}
	lock, err := state.Acquire(ctx, env.Dir, 0, "clean")
	if err != nil {
		return err
	}
	defer lock.Release()
	w := dockerCli.Err()
	removed, err := eng.CleanProject(ctx, env.Project.Name)
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
	for _, r := range removed {
		fmt.Fprintf(w, "removed %s\n", r)
	}
	if err != nil {
		return err
	}
	partials, err := archive.CleanPartials(env.BackupDir)
	for _, p := range partials {
		fmt.Fprintf(w, "removed partial backup %s\n", env.RelPath(p))
	}
	if err != nil {
		return err
	}
	if len(removed)+len(partials) == 0 {
		fmt.Fprintln(w, "Nothing to clean.")
	}
	return nil
}
