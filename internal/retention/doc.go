// Package retention decides which backups of a storage target to delete
// and deletes them from a local directory.
//
// The decision (Decide) is a pure function of the current time, the backups
// the target lists and its policy, given as plain values: it reads no file,
// so every storage target (the local directory now, a remote one later,
// each with its own Policy) applies the same rules, and the rules that
// protect users from losing their data can be tested with crafted backup
// sets and fake clocks:
//
//   - a backup's age and calendar period come from the Started time in its
//     manifest, never the file system's mtime (copying or restoring a
//     backup directory changes mtimes; see offen/docker-volume-backup#481);
//   - a backup is kept when any rule keeps it: retention_days (age),
//     keep_last, keep_hourly/daily/weekly/monthly/yearly (the newest keeper
//     of each of the last N calendar periods that have one, in the policy's
//     time zone, as restic's forget and borg's prune do; a rule that finds
//     fewer periods keeps the oldest keeper too), keep_tagged, and the
//     KeepMin floor;
//   - only keepers count for the count rules: a keeper is a successful and
//     verified backup. Successful is what the state file records (no record
//     counts as successful). Verified means the manifest parses, so every
//     archive's size and SHA-256 were recorded at commit after the data was
//     written (a manifest without them is broken, below), and no
//     verification since found it corrupt (the caller passes those in
//     Policy.Unverified). A backup that is not a keeper is kept only by
//     retention_days;
//   - the newest keeper is never deleted, whatever the rules say
//     (offen/docker-volume-backup#631: a late run deleted all but one);
//     when there is no keeper at all, nothing is deleted;
//   - a backup whose manifest cannot be read is never deleted
//     automatically: it is reported, and a person decides;
//   - when the newest keeper holds much less data than the keeper before it
//     (Policy.Guard), nothing is deleted and the decision says why: an
//     emptied volume must not push the good backups out.
//
// Decide's result does not depend on the order of its input, deciding again
// on what it keeps deletes nothing more, and adding a count rule or raising
// one never deletes more (turning KeepTagged on moves tagged backups to
// their own rule, so it is the exception).
//
// Apply carries a decision out. The package never prints.
package retention
