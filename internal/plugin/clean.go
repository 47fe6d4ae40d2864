package plugin

import (
	"context"
	"fmt"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
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
	w := dockerCli.Err()
	removed, err := (&app.Service{Engine: eng}).Clean(ctx, env)
	for _, r := range removed {
		fmt.Fprintf(w, "removed %s\n", r)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprintln(w, "Nothing to clean.")
	}
	return err
}
