// Package autobackup holds what the whole program shares: the plugin
// metadata, kept once in metadata.json and embedded into the binary.
package autobackup

import (
	_ "embed"
	"encoding/json"

	"github.com/docker/cli/cli-plugins/metadata"
)

//go:embed metadata.json
var metadataJSON []byte

// Metadata returns the plugin metadata from metadata.json.
func Metadata() metadata.Metadata {
	var m metadata.Metadata
	if err := json.Unmarshal(metadataJSON, &m); err != nil {
		panic("metadata.json: " + err.Error()) // embedded at build time; a test checks it parses
	}
	return m
}

// Version is the plugin version from metadata.json.
func Version() string { return Metadata().Version }
