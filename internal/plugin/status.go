package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/notify"
	"github.com/docker-autobackup/docker-autobackup/internal/retention"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

type statusOptions struct {
	format string
	last   int
}

// statusReport is what `status` shows; `--format json` prints it as is.
type statusReport struct {
	Project          string          `json:"project"`
	ProjectDir       string          `json:"project_dir"`
	StateFile        string          `json:"state_file"`
	Enabled          bool            `json:"enabled"`
	Schedule         string          `json:"schedule"`
	NextRun          *time.Time      `json:"next_run,omitempty"`
	ScheduledBy      string          `json:"scheduled_by,omitempty"` // what runs the schedule: crontab, systemd timer, launch agent, daemon; "" when nothing does
	RetentionDays    int             `json:"retention_days"`
	Retention        string          `json:"retention"`                 // the rules in effect
	PruneStopped     string          `json:"prune_stopped,omitempty"`   // why pruning is stopped
	RetentionError   string          `json:"retention_error,omitempty"` // an invalid combination of settings
	Directory        string          `json:"directory"`
	Remote           string          `json:"remote,omitempty"`    // remote.url; never credentials
	Encrypted        bool            `json:"encrypted,omitempty"` // uploads are encrypted (remote.encrypt_to)
	LocalOnly        []string        `json:"local_only,omitempty"`
	LastBackupID     string          `json:"last_backup_id,omitempty"`
	LastBackupTime   *time.Time      `json:"last_backup_time,omitempty"`
	LastBackupStatus string          `json:"last_backup_status,omitempty"`
	LastSuccessTime  *time.Time      `json:"last_success_time,omitempty"`
	Recent           []statusBackup  `json:"recent"`
	Restores         []state.Restore `json:"restores,omitempty"` // the most recent, newest first
	// StagingBytes estimates the disk the staging copies of the volumes
	// take (the uncompressed size at the newest staged backup); they are
	// kept between runs so the next one copies only what changed.
	StagingBytes     int64            `json:"staging_bytes_estimate,omitempty"`
	ServicesDown     []string         `json:"services_down,omitempty"`
	ServicesDownBy   string           `json:"services_down_by,omitempty"`
	Notify           []string         `json:"notify,omitempty"` // redacted
	PingURL          string           `json:"ping_url,omitempty"`
	MetricsFile      string           `json:"metrics_file,omitempty"`
	FailedDeliveries []state.Delivery `json:"failed_deliveries,omitempty"`
	Next             string           `json:"next_step"`
}

type statusBackup struct {
	ID              string    `json:"id"`
	Tag             string    `json:"tag,omitempty"`
	Started         time.Time `json:"started"`
	Status          string    `json:"status"`
	SizeBytes       int64     `json:"size_bytes"`
	DurationSeconds float64   `json:"duration_seconds"`
	DowntimeSeconds float64   `json:"downtime_seconds"`
	Missing         bool      `json:"missing,omitempty"`
	Error           string    `json:"error,omitempty"`
	Warnings        []string  `json:"warnings,omitempty"`
	Upload          string    `json:"upload,omitempty"` // uploaded or failed; empty without a remote
	UploadError     string    `json:"upload_error,omitempty"`
	// ServiceDowntime is each stopped service's downtime in seconds.
	ServiceDowntime map[string]float64 `json:"service_downtime_seconds,omitempty"`
}

func newStatusCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show settings, the last backup and recent runs of the project",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), dockerCli.Out(), g, o)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "", `Output format: "json", or empty for text`)
	cmd.Flags().IntVar(&o.last, "last", 5, "How many recent runs to show")
	return cmd
}

func runStatus(ctx context.Context, w io.Writer, g *globalOptions, o statusOptions) error {
	if o.format != "" && o.format != "json" {
		return usageErrorf("--format %q: want json (or nothing for text)", o.format)
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	r := buildStatus(env, o.last, time.Now())
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printStatus(w, r)
}

func buildStatus(env *app.Project, last int, now time.Time) statusReport {
	s := env.Settings
	f := env.State
	r := statusReport{
		Project:          env.Project.Name,
		ProjectDir:       env.Dir,
		StateFile:        env.StatePath,
		Enabled:          s.Enabled,
		Schedule:         s.Schedule,
		RetentionDays:    s.RetentionDays,
		Directory:        s.Directory,
		LastBackupID:     f.State.LastBackupID,
		LastBackupStatus: f.State.LastBackupStatus,
		Recent:           []statusBackup{},
	}
	if rc := env.RemoteConfig(); rc.URL != "" {
		r.Remote, r.Encrypted = rc.URL, rc.EncryptTo != ""
		for i := len(f.Backups) - 1; i >= 0; i-- {
			if b := f.Backups[i]; b.Remote == state.UploadFailed && b.Pruned.IsZero() {
				r.LocalOnly = append(r.LocalOnly, b.ID)
			}
		}
	}
	if !f.State.LastBackupTime.IsZero() {
		t := f.State.LastBackupTime
		r.LastBackupTime = &t
	}
	if !f.State.LastSuccessTime.IsZero() {
		t := f.State.LastSuccessTime
		r.LastSuccessTime = &t
	}
	if entries, err := env.Backups(); err == nil {
		policy := app.RetentionPolicy(s, f, entries)
		r.Retention = policy.String()
		if err := policy.Validate(); err != nil {
			r.RetentionError = err.Error()
		} else if d := retention.Decide(now, entries, policy); d.Stopped != "" {
			r.PruneStopped = d.Stopped + "; check it: docker autobackup verify " + d.Suspect + "; if the data really shrank: docker autobackup prune --force"
		}
	}
	r.ServicesDown, r.ServicesDownBy = f.Monitor.ServicesDown, f.Monitor.ServicesDownBy
	for _, u := range s.Notify {
		r.Notify = append(r.Notify, notify.Redact(u))
	}
	if s.PingURL != "" {
		r.PingURL = notify.Redact(s.PingURL)
	}
	r.MetricsFile = s.MetricsPath(env.Dir)
	r.FailedDeliveries = f.Monitor.Pending
	if s.Enabled {
		if runs, err := state.NextRuns(s.Schedule, now, 1); err == nil && len(runs) == 1 {
			r.NextRun = &runs[0]
		}
	}
	for i := len(f.Backups) - 1; i >= 0 && len(r.Recent) < last; i-- {
		b := f.Backups[i]
		if !b.Pruned.IsZero() {
			continue
		}
		sb := statusBackup{ID: b.ID, Tag: b.Tag, Started: b.Started, Status: b.Status, SizeBytes: b.SizeBytes,
			DurationSeconds: b.DurationSeconds, DowntimeSeconds: b.DowntimeSeconds, Error: b.Error, Warnings: b.Warnings,
			Upload: b.Remote, UploadError: b.RemoteError, ServiceDowntime: b.ServiceDowntime}
		if b.Status == state.StatusSuccess && b.Path != "" {
			p := b.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(env.Dir, p)
			}
			if _, err := os.Stat(p); err != nil {
				sb.Missing = true
			}
		}
		r.Recent = append(r.Recent, sb)
	}
	if entries, err := env.Backups(); err == nil {
		for _, e := range entries {
			if e.Manifest != nil && e.Manifest.Mode == archive.ModeStaged {
				for _, v := range e.Manifest.Volumes {
					r.StagingBytes += v.TarBytes
				}
				break
			}
		}
	}
	for i := len(f.Restores) - 1; i >= 0 && len(r.Restores) < 3; i-- {
		r.Restores = append(r.Restores, f.Restores[i])
	}
	if s.Enabled {
		r.ScheduledBy = scheduledBy(env)
		if r.ScheduledBy == "" {
			r.NextRun = nil // it would not happen
		}
	}
	switch {
	case len(r.ServicesDown) > 0:
		r.Next = "Services are NOT running since " + r.ServicesDownBy + ": " + strings.Join(r.ServicesDown, ", ") + ". Bring them back: " + env.UpCommand()
	case f.State.LastBackupID == "" && r.Remote != "":
		r.Next = "No backup from this host yet. Run: docker autobackup run (on a new host: docker autobackup list shows the remote's backups, docker autobackup restore latest brings one back)"
	case f.State.LastBackupID == "":
		r.Next = "No backup yet. Run: docker autobackup run"
	case f.State.LastBackupStatus != state.StatusSuccess:
		r.Next = "The last backup failed (see the error above). Fix it, then run: docker autobackup run"
	case r.RetentionError != "":
		r.Next = "Fix the retention settings: docker autobackup config"
	case r.PruneStopped != "":
		r.Next = "Pruning is stopped (see above): check the newest backup before old ones can go"
	case len(r.LocalOnly) > 0:
		r.Next = fmt.Sprintf("%d backup(s) are local only: the upload failed (see above). Fix it, then upload them: docker autobackup push", len(r.LocalOnly))
	case !s.Enabled:
		r.Next = "Scheduled backups are off. Turn them on: docker autobackup enable (then docker autobackup schedule install, or run docker autobackup daemon)"
	case r.ScheduledBy == "":
		r.Next = "Backups are enabled but NOTHING RUNS THE SCHEDULE (no crontab line, systemd timer, launch agent or daemon): no backup will happen. Install one: docker autobackup schedule install"
	default:
		r.Next = "All good. Back up now with: docker autobackup run"
	}
	return r
}

func printStatus(w io.Writer, r statusReport) error {
	onOff := "disabled"
	if r.Enabled {
		onOff = "enabled"
	}
	fmt.Fprintf(w, "Project:      %s (%s)\n", r.Project, r.ProjectDir)
	fmt.Fprintf(w, "Backups:      %s, schedule %q, directory %s\n", onOff, r.Schedule, r.Directory)
	if r.Retention != "" {
		fmt.Fprintf(w, "Retention:    %s\n", r.Retention)
	}
	if r.RetentionError != "" {
		fmt.Fprintf(w, "              INVALID: %s\n", r.RetentionError)
	}
	if r.PruneStopped != "" {
		fmt.Fprintf(w, "Pruning:      STOPPED: %s\n", r.PruneStopped)
	}
	if r.Remote != "" {
		enc := "not encrypted"
		if r.Encrypted {
			enc = "encrypted with age"
		}
		fmt.Fprintf(w, "Remote:       %s (%s)\n", r.Remote, enc)
		if len(r.LocalOnly) > 0 {
			fmt.Fprintf(w, "LOCAL ONLY:   %s (upload failed; docker autobackup push)\n", strings.Join(r.LocalOnly, ", "))
		}
	}
	if r.NextRun != nil {
		fmt.Fprintf(w, "Next run:     %s (by %s)\n", r.NextRun.Local().Format(time.RFC3339), r.ScheduledBy)
	} else if r.Enabled && r.ScheduledBy == "" {
		fmt.Fprintln(w, "Next run:     NEVER: enabled, but no crontab line, systemd timer, launch agent or daemon runs it")
	}
	if r.LastBackupTime != nil {
		fmt.Fprintf(w, "Last backup:  %s  %s  %s (%s ago)\n", r.LastBackupID, r.LastBackupStatus, r.LastBackupTime.Local().Format(time.RFC3339), time.Since(*r.LastBackupTime).Round(time.Second))
	} else {
		fmt.Fprintln(w, "Last backup:  never")
	}
	if len(r.Recent) > 0 {
		fmt.Fprintln(w, "Recent runs:")
		fmt.Fprintf(w, "  %-22s %-11s %-20s %10s %9s %9s  %s\n", "ID", "STATUS", "STARTED", "SIZE", "DURATION", "DOWNTIME", "TAG")
		for _, b := range r.Recent {
			st := b.Status
			if b.Missing {
				st += " (files missing)"
			}
			fmt.Fprintf(w, "  %-22s %-11s %-20s %10s %8.1fs %8.1fs  %s\n", b.ID, st, b.Started.Local().Format("2006-01-02 15:04:05"), humanBytes(b.SizeBytes), b.DurationSeconds, b.DowntimeSeconds, b.Tag)
			if b.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", b.Error)
			}
			if b.Upload != "" {
				fmt.Fprintf(w, "      remote: %s %s\n", b.Upload, b.UploadError)
			}
			if len(b.ServiceDowntime) > 0 {
				names := slices.Sorted(maps.Keys(b.ServiceDowntime))
				parts := make([]string, len(names))
				for i, n := range names {
					parts[i] = fmt.Sprintf("%s %.1fs", n, b.ServiceDowntime[n])
				}
				fmt.Fprintf(w, "      downtime per service: %s\n", strings.Join(parts, ", "))
			}
			for _, warn := range b.Warnings {
				fmt.Fprintf(w, "      warning: %s\n", warn)
			}
		}
	}
	if len(r.Restores) > 0 {
		fmt.Fprintln(w, "Recent restores:")
		for _, rs := range r.Restores {
			fmt.Fprintf(w, "  %-20s from %s  %-11s %s\n", rs.Started.Local().Format("2006-01-02 15:04:05"), rs.BackupID, rs.Status, strings.Join(rs.Volumes, ","))
			if rs.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", rs.Error)
			}
		}
	}
	if r.StagingBytes > 0 {
		fmt.Fprintf(w, "Staging:      ≈%s of disk for the staging copies of the volumes (kept between runs; docker autobackup clean removes them)\n", humanBytes(r.StagingBytes))
	}
	if len(r.Notify) > 0 || r.PingURL != "" || r.MetricsFile != "" {
		var parts []string
		if len(r.Notify) > 0 {
			parts = append(parts, "notify "+strings.Join(r.Notify, ", "))
		}
		if r.PingURL != "" {
			parts = append(parts, "ping "+r.PingURL)
		}
		if r.MetricsFile != "" {
			parts = append(parts, "metrics "+r.MetricsFile)
		}
		fmt.Fprintf(w, "Monitoring:   %s\n", strings.Join(parts, "; "))
	}
	if len(r.FailedDeliveries) > 0 {
		fmt.Fprintln(w, "Failed deliveries (retried at the next run):")
		for _, d := range r.FailedDeliveries {
			fmt.Fprintf(w, "  %-8s %s  %s  %d attempt(s): %s\n", d.Kind, d.Target, d.Time.Local().Format(time.RFC3339), d.Attempts, d.Error)
		}
	}
	if len(r.ServicesDown) > 0 {
		fmt.Fprintf(w, "!!! SERVICES NOT RUNNING: %s (since %s) !!!\n", strings.Join(r.ServicesDown, ", "), r.ServicesDownBy)
	}
	_, err := fmt.Fprintf(w, "Next step:    %s\n", r.Next)
	return err
}
