// Package notify tells people and monitoring systems how a backup went:
// notifications through shoutrrr service URLs (e-mail, ntfy, chat, generic
// webhooks), dead man's switch pings in the healthchecks.io style, and the
// redaction of the secrets those URLs carry.
//
// Nothing here prints or fails a backup: senders return one Result per
// target, bounded by a timeout, and the caller decides what to record.
package notify
