module github.com/docker-autobackup/docker-autobackup/tools/compose

go 1.26
