// Package archive stores and checks backups on disk.
//
// A backup is one directory <backupdir>/<id>/ holding manifest.json and one
// zstd-compressed tar file per volume. It is built in
// <backupdir>/.partial-<id>/ and renamed into place only when complete, so a
// crash never leaves a directory that looks like a finished backup; such
// leftovers are removed by CleanPartials. Backups hold secrets: directories
// are created 0700, files 0600, temporary files exclusively.
//
// A backup file is untrusted input when it is read back: ParseManifest is
// strict, Verify checks checksums, compression and tar structure, and
// CheckTar/Sanitize refuse tar entries that could write outside the volume
// they are restored into (absolute names, "..", writing through a symlink,
// hard links to outside or through symlinks, device nodes unless allowed,
// entry types the engine would interpret specially).
//
// The package never prints; progress is reported through callbacks.
package archive
