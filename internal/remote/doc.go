// Package remote keeps off-site copies of backups in object storage.
//
// A Store is the narrow interface to a bucket (put streaming, get, stat,
// list, delete); S3 is the S3-compatible implementation (minio-go) and
// Memory an in-memory one for tests. Another backend is one more type.
//
// A Target is one project's place in a store. A backup is laid out as
//
//	<prefix>/<project>[@<host>]/<id>/<archive>[.age]
//	<prefix>/<project>[@<host>]/<id>/manifest.json[.age]
//	<prefix>/<project>[@<host>]/<id>/index.json
//
// The index is plaintext and small (id, project, host, times, sizes, the
// checksum of every object as stored, whether it is encrypted) and is
// written last: a backup without an index is an unfinished upload, which
// the next push replaces. Archives and manifests are encrypted with age
// before they leave the host when the target has recipients.
package remote
