// Package retention decides which backups of a project to delete and
// deletes them.
//
// The decision (Decide) is a pure function of the current time, the backups
// found on disk and the policy, so that the rules that protect users from
// losing their data can be tested with crafted backup sets and fake clocks:
//
//   - a backup's age is the Started time recorded in its manifest, never the
//     file system's mtime (copying or restoring a backup directory changes
//     mtimes; see offen/docker-volume-backup#481);
//   - the KeepMin newest successful backups are kept however old they are,
//     and the newest successful backup is never deleted, whatever KeepMin
//     says (offen/docker-volume-backup#631: a late run deleted all but one);
//   - a backup whose manifest cannot be read is never deleted automatically:
//     it is reported, and a person decides;
//   - when there is no successful backup at all, nothing is deleted.
//
// Apply carries a decision out. The package never prints.
package retention
