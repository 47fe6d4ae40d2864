package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the backup (or restore) failed; services were restarted
	ExitUsage   = 2 // bad flags, arguments, configuration or input
	ExitNotBack = 3 // services could not be brought back: the worst case
)

// globalOptions are the project-selection flags, the same as docker compose's.
type globalOptions struct {
	compose.Options
	// progress is how progress is shown: auto, tty, plain, json or quiet
	// (see reporter).
	progress string
}

// NewRootCommand builds the `autobackup` command for plugin.Run.
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	g := &globalOptions{}
	cmd := &cobra.Command{
		Use:   "autobackup",
		Short: "Back up and restore the volumes of a Compose project, in dependency order",
		Long: `Back up and restore the named volumes of a Compose project.

Services are stopped in reverse dependency order, every named volume is
copied through a helper container, and services are started again in
dependency order and waited on until healthy. Run it in the project
directory, or select the project like docker compose does (-f, -p, ...).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := plugin.PersistentPreRunE(cmd, args); err != nil {
				return err
			}
			setupLogging(dockerCli)
			if !slices.Contains(progressModes, g.progress) {
				return exitError(usageErrorf("--progress %q: want one of %s", g.progress, strings.Join(progressModes, ", ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q for \"docker autobackup\"; run 'docker autobackup --help' for the list", args[0]))
			}
			return cmd.Help()
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// Flag errors bypass RunE (and its exitError): map them here, or
		// the plugin framework exits 1 for what is a usage error.
		return exitError(usageError(fmt.Errorf("%w; see 'docker autobackup %s --help'", err, strings.TrimPrefix(c.CommandPath(), "docker autobackup "))))
	})
	f := cmd.PersistentFlags()
	f.StringArrayVarP(&g.Files, "file", "f", nil, "Compose configuration files")
	f.StringVarP(&g.Name, "project-name", "p", "", "Project name")
	f.StringVar(&g.ProjectDir, "project-directory", "", "Alternate working directory (default: the path of the first compose file)")
	f.StringArrayVar(&g.EnvFiles, "env-file", nil, "Alternate environment files")
	f.StringArrayVar(&g.Profiles, "profile", nil, "Profiles to enable")
	f.StringVar(&g.progress, "progress", "auto", "How to show progress: auto (a live line on a terminal, plain lines otherwise), tty, plain, json (one object per event, on stderr) or quiet")

	cmd.AddCommand(
		newRunCommand(dockerCli, g),
		newStatusCommand(dockerCli, g),
		newCheckCommand(dockerCli, g),
		newListCommand(dockerCli, g),
		newVerifyCommand(dockerCli, g),
		newRestoreCommand(dockerCli, g),
		newCleanCommand(dockerCli, g),
		newConfigCommand(dockerCli, g),
		newEnableCommand(dockerCli, g),
		newDisableCommand(dockerCli, g),
		newScheduleCommand(dockerCli, g),
		newPruneCommand(dockerCli, g),
		newPushCommand(dockerCli, g),
		newDaemonCommand(dockerCli, g),
		newVersionCommand(dockerCli),
		newHooksCommand(dockerCli),
		newCLIHookCommand(dockerCli),
	)
	for _, c := range cmd.Commands() {
		if c.Name() == "version" || c.Name() == "hooks" {
			hideProjectFlags(c, f)
		}
		wrapErrors(c)
	}
	wrapErrors(cmd)
	return cmd
}

// hideProjectFlags keeps the project-selection flags out of the help of
// c and its subcommands, which work without a project.
func hideProjectFlags(c *cobra.Command, project *pflag.FlagSet) {
	c.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		project.VisitAll(func(f *pflag.Flag) { f.Hidden = true })
		defer project.VisitAll(func(f *pflag.Flag) { f.Hidden = false })
		cmd.Root().HelpFunc()(cmd, args)
	})
}

// wrapErrors routes a command's error through the one mapping to messages
// and exit codes, and rejects stray arguments as usage errors.
func wrapErrors(c *cobra.Command) {
	if c.Args == nil {
		c.Args = cobra.NoArgs
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return usageError(fmt.Errorf("%w; see '%s --help'", err, cmd.CommandPath()))
		}
		return nil
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, a []string) error {
			return exitError(run(cmd, a))
		}
	}
	for _, sub := range c.Commands() {
		wrapErrors(sub)
	}
}

// setupLogging sends diagnostics through slog to stderr, at the level of
// the docker CLI's own --debug / --log-level flags.
func setupLogging(dockerCli command.Cli) {
	level := slog.LevelWarn
	switch logrus.GetLevel() {
	case logrus.DebugLevel, logrus.TraceLevel:
		level = slog.LevelDebug
	case logrus.InfoLevel:
		level = slog.LevelInfo
	case logrus.ErrorLevel, logrus.FatalLevel, logrus.PanicLevel:
		level = slog.LevelError
	}
	if os.Getenv("DOCKER_AUTOBACKUP_DEBUG") != "" {
		level = slog.LevelDebug
	}
	h := slog.NewTextHandler(dockerCli.Err(), &slog.HandlerOptions{Level: level})
	slog.SetDefault(slog.New(h))
}

// loadProject loads the project the global options select.
func loadProject(ctx context.Context, g *globalOptions) (*app.Project, error) {
	return app.Load(ctx, g.Options)
}
