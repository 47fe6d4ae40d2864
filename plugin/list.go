package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/state"
)

// listEntry is one line of `list`; `--format json` prints them as an array.
type listEntry struct {
	ID              string    `json:"id"`
	Time            time.Time `json:"time"`
	Status          string    `json:"status"` // success, failed, interrupted, missing, broken
	Tag             string    `json:"tag,omitempty"`
	SizeBytes       int64     `json:"size_bytes"`
	DurationSeconds float64   `json:"duration_seconds"`
	DowntimeSeconds float64   `json:"downtime_seconds"`
	Volumes         []string  `json:"volumes"`
	Path            string    `json:"path,omitempty"`
	Error           string    `json:"error,omitempty"`
}

func newListCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List the project's backups, newest first",
		Long: `List the project's backups, newest first. The list is read from the
backup directory's manifests, so it works even without autobackup.toml;
runs recorded in autobackup.toml whose files are gone are shown as missing,
failed runs as failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" {
				return usageErrorf("--format %q: want json (or nothing for text)", format)
			}
			env, err := loadProject(cmd.Context(), g)
			if err != nil {
				return err
			}
			entries, err := listBackups(env)
			if err != nil {
				return err
			}
			return printList(dockerCli.Out(), entries, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", `Output format: "json", or empty for a table`)
	return cmd
}

func listBackups(env *projectEnv) ([]listEntry, error) {
	found, err := archive.List(env.BackupDir)
	if err != nil {
		return nil, fmt.Errorf("read backup directory %s: %w", env.BackupDir, err)
	}
	seen := map[string]bool{}
	var out []listEntry
	for _, e := range found {
		seen[e.ID] = true
		le := listEntry{ID: e.ID, Path: env.relPath(e.Path), Status: state.StatusSuccess}
		if e.Err != nil || e.Manifest == nil {
			le.Status = "broken"
			if e.Err != nil {
				le.Error = oneLine(e.Err.Error())
			}
			out = append(out, le)
			continue
		}
		m := e.Manifest
		le.Time, le.Tag = m.Started, m.Tag
		le.DurationSeconds = round2(m.Finished.Sub(m.Started).Seconds())
		le.DowntimeSeconds = round2(m.DowntimeSeconds)
		for _, v := range m.Volumes {
			le.Volumes = append(le.Volumes, v.Name)
			le.SizeBytes += v.ArchiveBytes
		}
		if b, ok := env.State.FindBackup(e.ID); ok && b.Status != state.StatusSuccess {
			le.Status, le.Error = b.Status, b.Error // data complete, but services did not all come back
		}
		out = append(out, le)
	}
	for _, b := range env.State.Backups {
		if seen[b.ID] || !b.Pruned.IsZero() {
			continue
		}
		le := listEntry{ID: b.ID, Time: b.Started, Status: b.Status, Tag: b.Tag, SizeBytes: b.SizeBytes,
			DurationSeconds: b.DurationSeconds, DowntimeSeconds: b.DowntimeSeconds, Volumes: b.Volumes, Error: b.Error}
		if b.Status == state.StatusSuccess {
			le.Status = "missing"
			le.Error = "recorded in " + state.FileName + " but " + b.Path + " is gone"
			if b.Path != "" {
				if _, err := os.Stat(filepath.Join(env.Dir, b.Path)); err == nil {
					le.Error = "files present but not a complete backup"
				}
			}
		}
		out = append(out, le)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

func printList(w io.Writer, entries []listEntry, format string) error {
	if format == "json" {
		if entries == nil {
			entries = []listEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "No backups yet. Make one with: docker autobackup run")
		return err
	}
	fmt.Fprintf(w, "%-22s %-20s %-11s %-12s %10s %9s %9s  %s\n", "ID", "TIME", "STATUS", "TAG", "SIZE", "DURATION", "DOWNTIME", "VOLUMES")
	for _, e := range entries {
		ts := "-"
		if !e.Time.IsZero() {
			ts = e.Time.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%-22s %-20s %-11s %-12s %10s %8.1fs %8.1fs  %s\n", e.ID, ts, e.Status, dash(e.Tag), humanBytes(e.SizeBytes), e.DurationSeconds, e.DowntimeSeconds, strings.Join(e.Volumes, ","))
		if e.Error != "" {
			fmt.Fprintf(w, "    %s\n", e.Error)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resolveBackup finds a backup by ID or "latest" in the backup directory.
func resolveBackup(env *projectEnv, id string) (*archive.Manifest, string, error) {
	if id == "" {
		id = archive.Latest
	}
	if id != archive.Latest && !archive.ValidID(id) {
		return nil, "", usageErrorf("%q is not a backup ID (they look like 20261125-231500-a1b2); see docker autobackup list", id)
	}
	m, path, err := archive.Open(env.BackupDir, id)
	if err != nil {
		if id == archive.Latest {
			return nil, "", fmt.Errorf("no backup in %s: %w", env.relPath(env.BackupDir), err)
		}
		return nil, "", fmt.Errorf("backup %q in %s: %w", id, env.relPath(env.BackupDir), err)
	}
	return m, path, nil
}
