// Package scheduler is the loop behind `docker autobackup daemon`: it fires
// backups of one or more projects at their cron times.
//
// For each project it
//   - loads the settings (enabled, schedule, catch_up, the last run) and
//     reloads them when the project's files change, checked by polling a
//     cheap stamp such as the state file's size and mtime;
//   - fires at the schedule's times while enabled, never starting a run of a
//     project while the previous one is still going (the tick is skipped and
//     reported);
//   - on start-up, runs once when catch_up is set and a scheduled time passed
//     since the last recorded run (the host was down or the daemon stopped);
//     a tick found much later than due while running (the host slept) is run
//     once with catch_up and skipped without it.
//
// Time comes from a Clock so tests drive the loop with a fake clock instead of
// sleeping. The wall clock is re-read at least every Poll interval, so a
// suspend or a clock step is noticed even though Go timers use the monotonic
// clock.
//
// The package never prints: it reports through Scheduler.Notify.
package scheduler
