// Command docker-autobackup is the docker CLI plugin `docker autobackup`.
// The same static binary also runs inside helper containers (helper mode).
package main

import (
	"os"

	"github.com/docker/cli/cli-plugins/plugin"

	autobackup "github.com/docker-autobackup/docker-autobackup"
	"github.com/docker-autobackup/docker-autobackup/internal/helper"
	abplugin "github.com/docker-autobackup/docker-autobackup/internal/plugin"
)

func main() {
	if helper.Is(os.Args) {
		os.Exit(helper.Main(os.Args, os.Stderr))
	}
	plugin.Run(abplugin.NewRootCommand, autobackup.Metadata(), abplugin.CLIOptions()...)
}
