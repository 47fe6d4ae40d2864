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

	"github.com/docker-autobackup/docker-autobackup/archive"
	"github.com/docker-autobackup/docker-autobackup/backup"
	"github.com/docker-autobackup/docker-autobackup/state"
)

type restoreOptions struct {
	volumes      []string
	yes          bool
	dryRun       bool
	quiet        bool
	allowDevices bool
	lockTimeout  time.Duration
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
Volumes that no longer exist are created again as they were recorded.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := archive.Latest
			if len(args) == 1 {
				id = args[0]
			}
			return runRestore(cmd.Context(), dockerCli, g, id, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.volumes, "volume", nil, "Restore only this volume (name or compose key; repeatable)")
	f.BoolVarP(&o.yes, "yes", "y", false, "Do not ask for confirmation (needed without a terminal)")
	f.BoolVar(&o.dryRun, "dry-run", false, "Verify and show what would be replaced; change nothing")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Print only warnings and errors")
	f.BoolVar(&o.allowDevices, "allow-devices", false, "Accept device nodes in the archive")
	f.DurationVar(&o.lockTimeout, "lock-timeout", -1, "How long to wait for another autobackup of this project to finish")
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
	m, path, err := resolveBackup(env, id)
	if err != nil {
		return err
	}
	if m.Project != env.Project.Name && !o.quiet {
		fmt.Fprintf(stderr, "autobackup: note: backup %s was taken of project %q; restoring into %q\n", m.ID, m.Project, env.Project.Name)
	}
	eng, err := newEngine(ctx, dockerCli)
	if err != nil {
		return err
	}
	lockTimeout := env.Settings.LockTimeout
	if o.lockTimeout >= 0 {
		lockTimeout = o.lockTimeout
	}
	lock, err := state.Acquire(ctx, env.Dir, lockTimeout, "restore "+m.ID)
	if err != nil {
		return err
	}
	defer lock.Release()

	pr := newPrinter(stderr, o.quiet)
	ro := backup.RestoreOptions{
		Project: env.Project, BackupPath: path, Manifest: m, Volumes: o.volumes,
		Safety:   archive.SafetyOptions{AllowDevices: o.allowDevices},
		Timeouts: env.timeouts(), Reporter: pr, Hooks: backup.LifecycleHooks(eng),
		NoDirect: noDirect(),
	}
	rp, err := backup.PlanRestore(ctx, eng, ro)
	if err != nil {
		if errors.Is(err, backup.ErrUsage) {
			return usageError(err)
		}
		return err
	}
	describeRestore(stderr, m, rp)
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
	res, runErr := backup.Restore(ctx, eng, ro, rp)
	rec := state.Restore{ID: archive.NewID(res.Started), BackupID: m.ID, Started: res.Started, Finished: res.Finished, Volumes: res.Volumes, Status: state.StatusSuccess}
	if runErr != nil {
		rec.Status = state.StatusFailed
		if ctx.Err() != nil {
			rec.Status = state.StatusInterrupted
		}
		rec.Error = oneLine(runErr.Error())
	}
	if err := state.Update(env.StatePath, func(f *state.File) error { f.RecordRestore(rec); return nil }); err != nil {
		runErr = errors.Join(runErr, err)
	}
	reportRestore(ctx, env, rec, res, runErr, warnTo(stderr))
	if runErr != nil {
		return runErr
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "autobackup: restored %d volume(s) from %s; downtime %s\n", len(res.Volumes), m.ID, res.Downtime.Round(time.Millisecond))
		printImages(stderr, m)
	}
	return nil
}

func describeRestore(w io.Writer, m *archive.Manifest, rp *backup.RestorePlan) {
	tag := ""
	if m.Tag != "" {
		tag = " [" + m.Tag + "]"
	}
	fmt.Fprintf(w, "Backup %s%s taken %s verified OK.\n", m.ID, tag, m.Started.Local().Format(time.RFC3339))
	fmt.Fprintln(w, "These volumes will be emptied and replaced with the backup's contents:")
	for _, v := range rp.Volumes {
		note := ""
		for _, c := range rp.Create {
			if c == v.Name {
				note = " (does not exist: will be created)"
			}
		}
		fmt.Fprintf(w, "  %-30s %s%s\n", v.Name, humanBytes(v.TarBytes), note)
	}
	if len(rp.StopOrder) > 0 {
		fmt.Fprintf(w, "Services stopped meanwhile, in this order: %s\n", orderString(rp.StopOrder))
	} else {
		fmt.Fprintln(w, "No running service uses them: nothing will be stopped.")
	}
	printImages(w, m)
}

// printImages shows the images the backed-up data belongs to, so a user
// rolling back an upgrade knows which versions to run with it.
func printImages(w io.Writer, m *archive.Manifest) {
	if len(m.Services) == 0 {
		return
	}
	fmt.Fprintln(w, "The data belongs to these images (as running at backup time):")
	for _, s := range m.Services {
		ref := s.Image
		if len(s.RepoDigests) > 0 {
			ref += " (" + s.RepoDigests[0] + ")"
		} else if s.ImageID != "" {
			ref += " (" + shortDigest(s.ImageID) + ")"
		}
		fmt.Fprintf(w, "  %-16s %s\n", s.Name, ref)
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
