package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type pushOptions struct {
	quiet       bool
	lockTimeout time.Duration
}

func newPushCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS]",
		Short: "Upload the local backups the remote target lacks",
		Long: `Upload every complete local backup of the project that the remote target
([remote] in autobackup.toml) does not have yet: archives, then the manifest,
then the index, encrypted with age when remote.encrypt_to is set. Every run
does this after the services are back; push catches up after a failed
upload without making a new backup. Nothing is stopped. Exit code 1 when an
upload fails (the local backups stay).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), dockerCli, g, o)
		},
	}
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "Print only warnings and errors")
	lockTimeoutFlag(cmd.Flags(), &o.lockTimeout)
	return cmd
}

func runPush(ctx context.Context, dockerCli command.Cli, g *globalOptions, o pushOptions) error {
	stderr := dockerCli.Err()
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	if !env.HasRemote() {
		return app.ErrNoRemote
	}
	s := &app.Service{Reporter: g.reporter(stderr, o.quiet)}
	if err := s.Push(ctx, env, o.lockTimeout); err != nil {
		return localOnlyError(err)
	}
	if !o.quiet {
		fmt.Fprintln(stderr, "autobackup: the remote has every local backup")
	}
	return nil
}
