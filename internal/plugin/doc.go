// Package plugin holds the cobra commands of `docker autobackup`, one file
// per command, and everything about presenting results: progress output,
// JSON, and the one place (errors.go) that maps errors to messages, hints
// and exit codes.
package plugin
