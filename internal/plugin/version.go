package plugin

import (
	"fmt"
	"runtime"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	autobackup "github.com/docker-autobackup/docker-autobackup"
)

func newVersionCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the plugin version",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(dockerCli.Out(), "docker autobackup %s (%s, %s/%s)\n", autobackup.Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
