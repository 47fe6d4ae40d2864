package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/size"
)

// Kinds of event.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
)

// Statuses of an event, as the JSON payload and the subject carry them.
const (
	StatusSuccess      = "success"
	StatusFailed       = "failed"
	StatusInterrupted  = "interrupted"
	StatusServicesDown = "services_down" // the run ended with services not running again: urgent
)

// Event is the outcome of one backup or restore, what a notification says.
type Event struct {
	Kind       string // KindBackup or KindRestore
	Project    string
	ProjectDir string
	Host       string
	BackupID   string
	Status     string
	Started    time.Time
	Finished   time.Time
	Downtime   time.Duration
	SizeBytes  int64
	Volumes    int
	Error      string   // one line; empty on success
	Down       []string // services that did not come back
	ComposeCmd string   // the command that brings them back, e.g. "docker compose --project-directory DIR up -d --wait"
	Retry      int      // earlier attempts to deliver this event that failed; 0 for a fresh one
}

// Failed reports whether the event is a failure of any kind.
func (e Event) Failed() bool { return e.Status != StatusSuccess }

// Title is a one-line subject: urgent events say so first.
func (e Event) Title() string {
	switch {
	case e.Status == StatusServicesDown:
		return fmt.Sprintf("URGENT: %s on %s: services not running after %s: %s", e.Project, e.Host, e.Kind, strings.Join(e.Down, ", "))
	case e.Failed():
		return fmt.Sprintf("%s %s on %s: %s", e.Kind, e.Status, e.Host, e.Project)
	}
	return fmt.Sprintf("%s ok on %s: %s", e.Kind, e.Host, e.Project)
}

// Text is the body of the message, plain text for people.
func (e Event) Text() string {
	var b strings.Builder
	if e.Status == StatusServicesDown {
		fmt.Fprintf(&b, "SERVICES ARE NOT RUNNING: %s\n", strings.Join(e.Down, ", "))
		if e.ComposeCmd != "" {
			fmt.Fprintf(&b, "Bring them back: %s\n", e.ComposeCmd)
		}
		b.WriteString("\n")
	}
	if e.Retry > 0 {
		fmt.Fprintf(&b, "(Sent late: %d earlier attempt(s) to deliver this failed.)\n\n", e.Retry)
	}
	fmt.Fprintf(&b, "Project:  %s (%s)\n", e.Project, e.ProjectDir)
	fmt.Fprintf(&b, "Host:     %s\n", e.Host)
	fmt.Fprintf(&b, "%-9s %s\n", title(e.Kind)+":", e.BackupID)
	fmt.Fprintf(&b, "Status:   %s\n", e.Status)
	if !e.Started.IsZero() {
		fmt.Fprintf(&b, "Started:  %s (took %s)\n", e.Started.UTC().Format(time.RFC3339), e.Finished.Sub(e.Started).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "Downtime: %s\n", e.Downtime.Round(time.Millisecond))
	if e.Kind == KindBackup {
		fmt.Fprintf(&b, "Size:     %s in %d volume(s)\n", size.Format(e.SizeBytes), e.Volumes)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, "Error:    %s\n", e.Error)
	}
	return b.String()
}

// Params are the structured fields of the event; a generic webhook with
// template=json posts them, with the title and the message, as JSON.
func (e Event) Params() map[string]string {
	p := map[string]string{
		"title":            e.Title(),
		"kind":             e.Kind,
		"project":          e.Project,
		"project_dir":      e.ProjectDir,
		"host":             e.Host,
		"backup_id":        e.BackupID,
		"status":           e.Status,
		"downtime_seconds": strconv.FormatFloat(e.Downtime.Seconds(), 'f', 3, 64),
		"size_bytes":       strconv.FormatInt(e.SizeBytes, 10),
		"error":            e.Error,
	}
	if !e.Started.IsZero() {
		p["started"] = e.Started.UTC().Format(time.RFC3339)
		p["finished"] = e.Finished.UTC().Format(time.RFC3339)
	}
	if len(e.Down) > 0 {
		p["services_down"] = strings.Join(e.Down, ",")
		p["fix"] = e.ComposeCmd
	}
	return p
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
