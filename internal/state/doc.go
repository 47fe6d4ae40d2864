// Package state reads and writes autobackup.toml, the file beside a Compose
// project that holds the user's settings for docker autobackup and the
// history of its backups, restores and prunes, and it provides the project
// lock that keeps two autobackup processes from working on one project at
// the same time.
//
// The file is meant to be read and edited by people as well as by the
// plugin, so Save writes keys in a fixed order, writes only the settings a
// user actually set (everything else is a default, shown by Describe), and
// replaces the file atomically. Load refuses a file it cannot fully
// understand — a syntax error, an unknown key, an invalid value — with a
// *ParseError naming the line and key, and because every writer loads
// before saving (see Update), a broken file is never overwritten: the user
// fixes it by hand.
//
// Settings come from three layers, highest first: the [settings] table of
// autobackup.toml, the x-autobackup extension of the compose file, and the
// built-in defaults (Defaults). Resolve flattens them; Describe explains
// where each value came from.
//
// The package never prints; callers decide how to show its errors.
package state
