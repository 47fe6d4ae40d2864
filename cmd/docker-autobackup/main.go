// Command docker-autobackup is the docker CLI plugin `docker autobackup`.
package main

import (
	"github.com/docker/cli/cli-plugins/plugin"

	autobackup "github.com/docker-autobackup/docker-autobackup"
	abplugin "github.com/docker-autobackup/docker-autobackup/plugin"
)

func main() {
	plugin.Run(abplugin.NewRootCommand, autobackup.Metadata())
}
