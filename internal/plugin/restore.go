package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/backup"
	"github.com/docker-autobackup/docker-autobackup/internal/crypt"
	"github.com/docker-autobackup/docker-autobackup/internal/remote"
)

type restoreOptions struct {
	volumes        []string
	yes            bool
	dryRun         bool
	quiet          bool
	allowDevices   bool
	lockTimeout    time.Duration
	fromProject    string
	stopOthers     bool
	tag            string
	backupFirst    bool // --backup-first; its default depends on the terminal (see backupFirstSet)
	backupFirstSet bool
	remote         bool
	identity       string
}

func newRestoreCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [ID|latest] [OPTIONS]",
		Short: "Replace the project's volumes with a backup",
		Long: `Restore volumes of the project from a backup (default: the latest, all of
its volumes). The backup is verified first; then the services using those
volumes (and their dependents) are stopped in reverse dependency order,
each volume is emptied and filled with the archived tree, and the services
are started again in dependency order and waited on until healthy.
Volumes that no longer exist are created again as they were recorded.

Only this project's backups are restored: a backup folder shared by several
projects holds backups of each, and restoring another project's backup is
refused unless asked for with --from-project NAME (for example production
data into a staging copy). Each volume of the backup then replaces the
project's volume with the same compose key; the plan shows the mapping.
A volume that a running container outside the project uses is not
touched: the restore is refused, naming the containers, unless
--stop-others lets it stop and restart them.

With a remote target, a backup that is not in the local backup folder (on a
new host: any) is downloaded first, decrypted with the identity (--identity,
remote.identity_file or AUTOBACKUP_IDENTITY_FILE) and checked; a missing or
wrong identity is refused before anything is stopped.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := archive.Latest
			if len(args) == 1 {
				id = args[0]
			}
			if o.tag != "" {
				if len(args) == 1 {
					return usageErrorf("give a backup ID or --tag, not both")
				}
				id = "tag:" + o.tag
			}
			o.backupFirstSet = cmd.Flags().Changed("backup-first")
			return runRestore(cmd.Context(), dockerCli, g, id, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.volumes, "volume", nil, "Restore only this volume (name or compose key; repeatable)")
	f.BoolVarP(&o.yes, "yes", "y", false, "Do not ask for confirmation (needed without a terminal)")
	f.BoolVar(&o.dryRun, "dry-run", false, "Verify and show what would be replaced; change nothing")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Print only warnings and errors")
	f.BoolVar(&o.allowDevices, "allow-devices", false, "Accept device nodes in the archive")
	lockTimeoutFlag(f, &o.lockTimeout)
	f.StringVar(&o.tag, "tag", "", "Restore the newest backup with this tag (from run --tag) instead of an ID")
	f.BoolVar(&o.backupFirst, "backup-first", false, "First back up the volumes' current state (tagged pre-restore) so this restore can be undone (default: on when run from a terminal)")
	f.StringVar(&o.fromProject, "from-project", "", "Restore a backup of another project (by its compose project name) into this one, volumes matched by compose key")
	f.BoolVar(&o.stopOthers, "stop-others", false, "Also stop and restart running containers outside the project that use the volumes")
	f.BoolVar(&o.remote, "remote", false, "Pick the backup on the remote target (latest: the remote's newest); it is downloaded unless this host has it")
	f.StringVar(&o.identity, "identity", "", "age identity file (or ssh private key) to decrypt a remote backup")
	return cmd
}

func runRestore(ctx context.Context, dockerCli command.Cli, g *globalOptions, id string, o restoreOptions) error {
	stderr := dockerCli.Err()
	ctx, stop := withSignals(ctx, stderr)
	defer stop()
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	from := env.Project.Name
	if o.fromProject != "" {
		from = o.fromProject
	}
	m, path, err := resolveForRestore(ctx, g, env, from, id, o, stderr)
	if err != nil {
		return err
	}
	if m.Project != env.Project.Name && !o.quiet {
		fmt.Fprintf(stderr, "autobackup: restoring backup %s of project %q into project %q\n", m.ID, m.Project, env.Project.Name)
	}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		return err
	}
	s := &app.Service{Engine: eng, Reporter: g.reporter(stderr, o.quiet)}
	planned, err := s.PlanRestore(ctx, env, app.RestoreRequest{LockTimeout: o.lockTimeout, Options: backup.RestoreOptions{
		Project: env.Project, BackupPath: path, Manifest: m, Volumes: o.volumes,
		Safety: archive.SafetyOptions{AllowDevices: o.allowDevices}, StopOthers: o.stopOthers,
	}})
	if err != nil {
		if errors.Is(err, backup.ErrUsage) {
			return usageError(err)
		}
		return err
	}
	defer planned.Release()
	describeRestore(stderr, m, planned.Plan)
	if o.dryRun {
		fmt.Fprintln(stderr, "Dry run: the backup verified; nothing was changed.")
		return nil
	}
	if !o.yes {
		if !dockerCli.In().IsTerminal() {
			return usageErrorf("restore replaces volume data; there is no terminal to ask, so pass --yes to confirm")
		}
		ok, err := confirm(dockerCli.In(), stderr, "Replace the data in these volumes? [y/N] ")
		if err != nil {
			return err
		}
		if !ok {
			return exitCodeErr{code: ExitFailed, err: errors.New("restore cancelled; nothing was changed")}
		}
	}
	backupFirst := o.backupFirst
	if !o.backupFirstSet {
		backupFirst = dockerCli.In().IsTerminal()
	}
	if backupFirst && planned.ReplacesData() {
		fmt.Fprintln(stderr, "autobackup: backing up the current data first (--backup-first)")
		safety, err := planned.BackupFirst(ctx)
		if err != nil {
			return err
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "autobackup: the current data is in backup %s; to undo this restore: docker autobackup restore %s --yes\n", safety, safety)
		}
	}
	res, err := planned.Run(ctx)
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "autobackup: restored %d volume(s) from %s; downtime %s\n", len(res.Volumes), m.ID, res.Downtime.Round(time.Millisecond))
	}
	return nil
}

// resolveForRestore finds the backup locally, or downloads it from the
// remote target when it is not here (or --remote asks for the remote's).
// Downloading stops nothing: a wrong identity fails here.
func resolveForRestore(ctx context.Context, g *globalOptions, env *app.Project, from, id string, o restoreOptions, w io.Writer) (*archive.Manifest, string, error) {
	if !o.remote {
		m, path, err := resolveBackup(env, from, id)
		if err == nil || !errors.Is(err, archive.ErrNotFound) || !env.HasRemote() {
			return m, path, err
		}
	}
	if id != "" && id != archive.Latest && !archive.ValidID(id) {
		return nil, "", usageErrorf("%q is not a backup ID (they look like 20261125-231500-a1b2); see docker autobackup list", id)
	}
	s := &app.Service{Reporter: g.reporter(w, o.quiet)}
	m, path, err := s.Download(ctx, env, app.DownloadRequest{From: from, ID: id, Identity: o.identity})
	if errors.Is(err, remote.ErrNoIdentity) || errors.Is(err, crypt.ErrWrongIdentity) {
		return nil, "", usageError(err)
	}
	return m, path, err
}

func describeRestore(w io.Writer, m *archive.Manifest, rp *backup.RestorePlan) {
	tag := ""
	if m.Tag != "" {
		tag = " [" + m.Tag + "]"
	}
	fmt.Fprintf(w, "Backup %s%s taken %s verified OK.\n", m.ID, tag, m.Started.Local().Format(time.RFC3339))
	fmt.Fprintln(w, "These volumes will be emptied and replaced with the backup's contents:")
	for i, v := range rp.Volumes {
		note := ""
		for _, c := range rp.Create {
			if c == v.Name {
				note = " (does not exist: will be created)"
			}
		}
		if from := rp.Map[i].From; from != v.Name {
			note += fmt.Sprintf("  <- %s of project %s (key %s)", from, m.Project, rp.Map[i].Key)
		}
		fmt.Fprintf(w, "  %-30s %s%s\n", v.Name, humanBytes(v.TarBytes), note)
	}
	for _, c := range rp.Others {
		fmt.Fprintf(w, "Outside the project, stopped meanwhile (--stop-others): %s\n", c.Name)
	}
	if len(rp.StopOrder) > 0 {
		fmt.Fprintf(w, "Services stopped meanwhile, in this order: %s\n", orderString(rp.StopOrder, ""))
	} else {
		fmt.Fprintln(w, "No running service uses them: nothing will be stopped.")
	}
	printImages(w, m)
}

// printImages shows the images the backed-up data belongs to, so a user
// rolling back an upgrade knows which versions to run with it: one line
// per image, with the services that ran it.
func printImages(w io.Writer, m *archive.Manifest) {
	if len(m.Services) == 0 {
		return
	}
	var refs []string
	users := map[string][]string{}
	for _, s := range m.Services {
		ref := s.Image
		if len(s.RepoDigests) > 0 {
			ref += " (" + s.RepoDigests[0] + ")"
		} else if s.ImageID != "" {
			ref += " (" + shortDigest(s.ImageID) + ")"
		}
		if users[ref] == nil {
			refs = append(refs, ref)
		}
		users[ref] = append(users[ref], s.Name)
	}
	fmt.Fprintln(w, "The data belongs to these images (as running at backup time):")
	for _, ref := range refs {
		fmt.Fprintf(w, "  %-16s %s\n", strings.Join(users[ref], ", "), ref)
	}
}

func shortDigest(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 && len(id) > i+13 {
		return id[:i+13]
	}
	return id
}

func confirm(in io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
