package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	Host            string    `json:"host,omitempty"` // set when another host took the backup`
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
			if n := env.unattributed(); n > 0 && format == "" {
				fmt.Fprintf(dockerCli.Err(), "autobackup: note: %s holds %d backup(s) whose manifest is too damaged to tell which project they belong to; they are not listed, pruned or restored (inspect them by hand)\n", env.relPath(env.BackupDir), n)
			}
			return printList(dockerCli.Out(), entries, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", `Output format: "json", or empty for a table`)
	return cmd
}

func listBackups(env *projectEnv) ([]listEntry, error) {
	found, err := env.backups()
	if err != nil {
		return nil, err
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
		if m.Host != "" && m.Host != archive.Hostname() {
			le.Host = m.Host
		}
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
		if e.Host != "" {
			fmt.Fprintf(w, "    taken on host %s\n", e.Host)
		}
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

// resolveBackup finds a backup of project by ID or "latest" in the backup
// directory. project is the current project's name unless the user asked
// for another's with --from-project. A backup of another project is
// refused with a message that names it and says how to restore it
// deliberately.
func resolveBackup(env *projectEnv, project, id string) (*archive.Manifest, string, error) {
	if id == "" {
		id = archive.Latest
	}
	if id != archive.Latest && !archive.ValidID(id) {
		return nil, "", usageErrorf("%q is not a backup ID (they look like 20261125-231500-a1b2); see docker autobackup list", id)
	}
	m, path, err := archive.Open(env.BackupDir, project, id)
	var fe *archive.ForeignError
	switch {
	case err == nil:
		return m, path, nil
	case errors.As(err, &fe) && project == env.Project.Name:
		return nil, "", hintError{err: fmt.Errorf("%w: nothing was changed", err),
			hint: fmt.Sprintf("to bring project %s's data into %s on purpose: docker autobackup restore --from-project %s %s", fe.Project, env.Project.Name, fe.Project, id)}
	case errors.As(err, &fe):
		return nil, "", fmt.Errorf("%w (--from-project %s)", err, project)
	case errors.Is(err, archive.ErrNotFound):
		others, _ := archive.Projects(env.BackupDir)
		others = slices.DeleteFunc(others, func(p string) bool { return p == project })
		if len(others) > 0 && project == env.Project.Name {
			return nil, "", hintError{err: fmt.Errorf("%s: %w", env.relPath(env.BackupDir), err),
				hint: fmt.Sprintf("%s also holds backups of %s; this project is %q (compose project name). To restore another project's backup here: docker autobackup restore --from-project NAME ID", env.relPath(env.BackupDir), strings.Join(others, ", "), env.Project.Name)}
		}
		return nil, "", fmt.Errorf("%s: %w", env.relPath(env.BackupDir), err)
	}
	return nil, "", fmt.Errorf("backup %s in %s: %w", id, env.relPath(env.BackupDir), err)
}
