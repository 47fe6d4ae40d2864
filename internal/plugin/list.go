package plugin

import (
	"context"
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

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// listEntry is one line of `list`; `--format json` prints them as an array.
type listEntry struct {
	ID              string    `json:"id"`
	Time            time.Time `json:"time"`
	Status          string    `json:"status"` // success, failed, interrupted, missing, elsewhere (complete, in another folder), broken
	Tag             string    `json:"tag,omitempty"`
	SizeBytes       int64     `json:"size_bytes"`
	DurationSeconds float64   `json:"duration_seconds"`
	DowntimeSeconds float64   `json:"downtime_seconds"`
	Volumes         []string  `json:"volumes"`
	Path            string    `json:"path,omitempty"`
	Error           string    `json:"error,omitempty"`
	Location        string    `json:"location,omitempty"` // local, remote or local+remote; empty without a remote
	Project         string    `json:"project,omitempty"`  // with --all-projects
	Host            string    `json:"host,omitempty"`     // the host that took it, when known to differ from this one or for a remote backup
	Encrypted       bool      `json:"encrypted,omitempty"`
}

func newListCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var format string
	var remoteOnly, allProjects bool
	cmd := &cobra.Command{
		Use:     "list [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List the project's backups, newest first",
		Long: `List the project's backups, newest first. The list is read from the
backup directory's manifests, so it works even without autobackup.toml;
runs recorded in autobackup.toml whose files are gone are shown as missing,
failed runs as failed. With a remote target the remote backups are listed
too (LOCATION says where each is); this needs no key, even when they are
encrypted. --remote lists only the remote, --all-projects every project in
the bucket (a fleet view).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" {
				return usageErrorf("--format %q: want json (or nothing for text)", format)
			}
			if allProjects && !remoteOnly {
				return usageErrorf("--all-projects lists the remote target: add --remote")
			}
			env, err := loadProject(cmd.Context(), g)
			if err != nil {
				return err
			}
			var entries []listEntry
			if !remoteOnly {
				if entries, err = listBackups(env); err != nil {
					return err
				}
			}
			if remoteOnly && !env.HasRemote() {
				return app.ErrNoRemote
			}
			if env.HasRemote() {
				merged, err := mergeRemote(cmd.Context(), env, entries, allProjects)
				if err != nil {
					if remoteOnly {
						return err
					}
					fmt.Fprintf(dockerCli.Err(), "autobackup: WARNING cannot list the remote backups: %v\n", err)
				} else {
					entries = merged
				}
			}
			if n := env.Unattributed(); n > 0 && format == "" {
				fmt.Fprintf(dockerCli.Err(), "autobackup: note: %s holds %d backup(s) whose manifest is too damaged to tell which project they belong to; they are not listed, pruned or restored (inspect them by hand)\n", env.RelPath(env.BackupDir), n)
			}
			return printList(dockerCli.Out(), entries, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", `Output format: "json", or empty for a table`)
	cmd.Flags().BoolVar(&remoteOnly, "remote", false, "List only the backups on the remote target")
	cmd.Flags().BoolVar(&allProjects, "all-projects", false, "With --remote: every project (and host) in the bucket")
	return cmd
}

func listBackups(env *app.Project) ([]listEntry, error) {
	found, err := env.Backups()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []listEntry
	for _, e := range found {
		seen[e.ID] = true
		le := listEntry{ID: e.ID, Path: env.RelPath(e.Path), Status: state.StatusSuccess}
		if e.Err != nil || e.Manifest == nil {
			le.Status = "broken"
			if e.Err != nil {
				le.Error = text.OneLine(e.Err.Error())
			}
			out = append(out, le)
			continue
		}
		m := e.Manifest
		le.Time, le.Tag = m.Started, m.Tag
		if m.Host != "" && m.Host != archive.Hostname() {
			le.Host = m.Host
		}
		le.DurationSeconds = app.Round2(m.Finished.Sub(m.Started).Seconds())
		le.DowntimeSeconds = app.Round2(m.DowntimeSeconds)
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
			le.Error = "recorded in " + state.HistoryName + " but " + b.Path + " is gone"
			if b.Path != "" {
				path := b.Path
				if !filepath.IsAbs(path) {
					path = filepath.Join(env.Dir, path)
				}
				if _, err := os.Stat(path); err == nil {
					le.Error = "files present in " + b.Path + " but not a complete backup"
					if _, err := os.Stat(filepath.Join(path, archive.ManifestName)); err == nil && filepath.Dir(path) != env.BackupDir {
						le.Status = "elsewhere"
						le.Error = fmt.Sprintf("a complete backup in %s, outside the backup directory %s (was the directory setting changed?); move it into %s to list, verify and restore it",
							filepath.Dir(b.Path), env.RelPath(env.BackupDir), env.RelPath(env.BackupDir))
					}
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

// mergeRemote adds the remote backups to the local entries (or, with all,
// those of every project in the store): a backup in both places is one
// entry with location local+remote.
func mergeRemote(ctx context.Context, env *app.Project, local []listEntry, all bool) ([]listEntry, error) {
	listed, err := (&app.Service{}).RemoteBackups(ctx, env, all)
	if err != nil {
		return nil, err
	}
	byID := map[string]int{}
	for i := range local {
		local[i].Location = "local"
		byID[local[i].ID] = i
	}
	out := local
	for _, l := range listed {
		if i, ok := byID[l.ID]; ok && !all && l.Index != nil {
			out[i].Location, out[i].Encrypted, out[i].Host = "local+remote", l.Index.Encrypted, l.Index.Host
			if out[i].Status == "missing" { // recorded here, files gone: the remote copy is what is left
				out[i].Status, out[i].Error, out[i].Location, out[i].Path = state.StatusSuccess, "", "remote", ""
			}
			continue
		}
		le := listEntry{ID: l.ID, Location: "remote", Status: state.StatusSuccess}
		if all {
			le.Project = l.Folder
		}
		if l.Err != nil || l.Index == nil {
			le.Status = "broken"
			if l.Err != nil {
				le.Error = text.OneLine(l.Err.Error())
			}
			out = append(out, le)
			continue
		}
		ix := l.Index
		le.Time, le.Tag, le.SizeBytes, le.Volumes, le.Host, le.Encrypted = ix.Started, ix.Tag, ix.SizeBytes, ix.Volumes, ix.Host, ix.Encrypted
		le.DurationSeconds = app.Round2(ix.Finished.Sub(ix.Started).Seconds())
		if all {
			le.Project = ix.Project
			if strings.Contains(l.Folder, "@") {
				le.Project = l.Folder
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
	withLoc := false
	for _, e := range entries {
		withLoc = withLoc || e.Location != ""
	}
	if withLoc {
		return printListWithLocation(w, entries)
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

func printListWithLocation(w io.Writer, entries []listEntry) error {
	fmt.Fprintf(w, "%-22s %-20s %-11s %-13s %-10s %10s  %-16s %s\n", "ID", "TIME", "STATUS", "LOCATION", "ENCRYPTED", "SIZE", "PROJECT/HOST", "VOLUMES")
	for _, e := range entries {
		ts := "-"
		if !e.Time.IsZero() {
			ts = e.Time.Local().Format("2006-01-02 15:04:05")
		}
		enc := "no"
		if e.Encrypted {
			enc = "age"
		}
		if e.Location == "local" {
			enc = "-"
		}
		who := e.Project
		if e.Host != "" {
			who = strings.TrimPrefix(who+" "+e.Host, " ")
		}
		fmt.Fprintf(w, "%-22s %-20s %-11s %-13s %-10s %10s  %-16s %s\n", e.ID, ts, e.Status, e.Location, enc, humanBytes(e.SizeBytes), dash(who), strings.Join(e.Volumes, ","))
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
func resolveBackup(env *app.Project, project, id string) (*archive.Manifest, string, error) {
	if id == "" {
		id = archive.Latest
	}
	if id != archive.Latest && !archive.ValidID(id) {
		full, err := expandID(env, project, id)
		if err != nil {
			return nil, "", err
		}
		id = full
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
		msg := fmt.Sprintf("backup %s of project %s is not in %s", id, project, env.RelPath(env.BackupDir))
		if id == archive.Latest {
			msg = fmt.Sprintf("no backup of project %s in %s", project, env.RelPath(env.BackupDir))
		}
		err = reworded(err, msg)
		others, _ := archive.Projects(env.BackupDir)
		others = slices.DeleteFunc(others, func(p string) bool { return p == project })
		if len(others) > 0 && project == env.Project.Name {
			return nil, "", hintError{err: err,
				hint: fmt.Sprintf("%s also holds backups of %s; this project is %q (compose project name). To restore another project's backup here: docker autobackup restore --from-project NAME ID", env.RelPath(env.BackupDir), strings.Join(others, ", "), env.Project.Name)}
		}
		return nil, "", err
	}
	return nil, "", fmt.Errorf("backup %s in %s: %w", id, env.RelPath(env.BackupDir), err)
}

// expandID turns what the user typed for a backup into its ID: a unique
// prefix of an ID of project ("20261201-0819"), as restic accepts, or
// "tag:T" for the newest backup tagged T (what --tag gives).
func expandID(env *app.Project, project, arg string) (string, error) {
	entries, err := archive.List(env.BackupDir, project)
	if err != nil {
		return "", err
	}
	if tag, ok := strings.CutPrefix(arg, "tag:"); ok {
		for _, e := range entries { // newest first
			if e.Manifest != nil && e.Manifest.Tag == tag {
				return e.ID, nil
			}
		}
		return "", usageErrorf("no backup of project %s is tagged %q; see docker autobackup list", project, tag)
	}
	var match []string
	if arg != "" && strings.Trim(arg, "0123456789abcdef-") == "" {
		for _, e := range entries {
			if strings.HasPrefix(e.ID, arg) {
				match = append(match, e.ID)
			}
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		hint := ""
		for _, e := range entries {
			if e.Manifest != nil && e.Manifest.Tag == arg {
				hint = fmt.Sprintf(" (a backup is tagged %q: use --tag %s)", arg, arg)
				break
			}
		}
		return "", usageErrorf("%q is neither a backup ID nor the start of one of project %s%s; IDs look like 20261125-231500-a1b2, see docker autobackup list", arg, project, hint)
	}
	if len(match) > 5 {
		match = append(match[:5], "…")
	}
	return "", usageErrorf("%q is the start of several backups (%s); give more of the ID", arg, strings.Join(match, ", "))
}
