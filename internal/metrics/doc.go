// Package metrics writes the outcome of a project's backups as a
// Prometheus text-format file for node_exporter's textfile collector
// (--collector.textfile.directory). The file is replaced atomically, so
// the collector never reads half of it.
package metrics
