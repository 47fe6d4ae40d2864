// Package backup runs a backup of a Compose project: it plans which named
// volumes to copy, stops the services in reverse dependency order, copies
// every volume through a never-started helper container, restarts the
// services in dependency order (always, even when the copy failed) and
// writes the archives and manifest as one unit. Restore runs the same
// machinery the other way round.
package backup
