// Package cliconfig edits the docker CLI's config.json (in $DOCKER_CONFIG,
// default ~/.docker) without losing anything in it.
//
// The file belongs to the docker CLI and to every tool that writes into it
// (credential helpers, contexts, Docker Desktop, other plugins), so an edit
// touches only the keys it means to change: every other key keeps its value
// and its position (the file is re-indented with tabs, as the docker CLI
// writes it), and a file that needs no change is not written at all. A file
// that is not a JSON object is refused and left as it is. Writes are atomic (temporary file in the same
// directory, fsync, rename) and keep the file's permissions and, where the
// process may, its owner; a symlinked config.json is edited at its target.
package cliconfig
