package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/progress"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

type verifyOptions struct {
	all          bool
	allowDevices bool
	remote       bool
	identity     string
	tag          string
	reporter     progress.Reporter // how far each archive is read; nil for none
}

func newVerifyCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [ID|latest] [OPTIONS]",
		Short: "Check that backups are intact and safe to restore",
		Long: `Recompute every archive's SHA-256 and compare it with the manifest, then
read each archive to the end (decompression and tar structure) and check
that no entry would escape the volume on restore. Exit code 1 if anything
is wrong.

With --remote the objects on the remote target are read back instead:
each must have the size and SHA-256 its index records, and, with the
identity for encrypted backups (--identity, remote.identity_file or
AUTOBACKUP_IDENTITY_FILE), each archive's plaintext must match the
manifest. Without an identity, encrypted backups get the first check only.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := archive.Latest
			if len(args) == 1 {
				id = args[0]
			}
			if o.all && len(args) == 1 {
				return usageErrorf("give a backup ID or --all, not both")
			}
			if o.tag != "" {
				if len(args) == 1 || o.all {
					return usageErrorf("give a backup ID, --tag or --all, not more than one")
				}
				id = "tag:" + o.tag
			}
			o.reporter = g.reporter(dockerCli.Err(), false)
			if o.remote {
				return runVerifyRemote(cmd.Context(), dockerCli.Out(), g, id, o)
			}
			return runVerify(cmd.Context(), dockerCli.Out(), g, id, o)
		},
	}
	cmd.Flags().BoolVar(&o.remote, "remote", false, "Verify the copies on the remote target")
	cmd.Flags().StringVar(&o.identity, "identity", "", "age identity file (or ssh private key) for encrypted remote backups")
	cmd.Flags().StringVar(&o.tag, "tag", "", "Verify the newest backup with this tag (from run --tag)")
	cmd.Flags().BoolVar(&o.all, "all", false, "Verify every backup of the project")
	cmd.Flags().BoolVar(&o.allowDevices, "allow-devices", false, "Accept device nodes in archives")
	return cmd
}

func runVerify(ctx context.Context, w io.Writer, g *globalOptions, id string, o verifyOptions) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	var targets []archive.Entry
	if o.all {
		entries, err := env.Backups()
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return fmt.Errorf("no backups of project %s in %s", env.Project.Name, env.RelPath(env.BackupDir))
		}
		targets = entries
	} else {
		m, path, err := resolveBackup(env, env.Project.Name, id)
		if err != nil {
			return err
		}
		targets = []archive.Entry{{ID: m.ID, Path: path, Manifest: m}}
	}
	s := &app.Service{Reporter: o.reporter}
	verified, recErr := s.Verify(ctx, env, targets, archive.SafetyOptions{AllowDevices: o.allowDevices})
	bad := 0
	for _, v := range verified {
		if v.Manifest != nil {
			bad++
			fmt.Fprintf(w, "%s  BROKEN  manifest: %v\n", v.ID, v.Manifest)
			continue
		}
		for _, c := range v.Checks {
			if c.Err != nil {
				bad++
				fmt.Fprintf(w, "%s  CORRUPT %s: %s\n", v.ID, c.Archive, text.OneLine(c.Err.Error()))
				continue
			}
			fmt.Fprintf(w, "%s  OK      %s\n", v.ID, c.Archive)
		}
	}
	if recErr != nil {
		fmt.Fprintf(w, "WARNING the result is not recorded in %s: %v\n", env.RelPath(env.StatePath), recErr)
	}
	if bad > 0 {
		return exitCodeErr{code: ExitFailed, err: errors.New(fmt.Sprint(bad, " archive(s) failed verification; do not rely on them. Make a fresh backup: docker autobackup run"))}
	}
	return nil
}

func runVerifyRemote(ctx context.Context, w io.Writer, g *globalOptions, id string, o verifyOptions) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	s := &app.Service{Reporter: o.reporter}
	results, err := s.VerifyRemote(ctx, env, app.VerifyRemoteRequest{ID: id, All: o.all, Identity: o.identity})
	if err != nil {
		return err
	}
	bad, partial := 0, 0
	for _, v := range results {
		if v.Err != nil {
			bad++
			fmt.Fprintf(w, "%s  BROKEN  %s\n", v.ID, text.OneLine(v.Err.Error()))
			continue
		}
		if v.IndexOnly {
			partial++
		}
		for _, c := range v.Checks {
			if c.Err != nil {
				bad++
				fmt.Fprintf(w, "%s  CORRUPT %s: %s\n", v.ID, c.Object, text.OneLine(c.Err.Error()))
				continue
			}
			fmt.Fprintf(w, "%s  OK      %s\n", v.ID, c.Object)
		}
	}
	if partial > 0 {
		fmt.Fprintf(w, "%d encrypted backup(s) were checked against their index only; give the identity to check the contents: --identity FILE\n", partial)
	}
	if bad > 0 {
		return exitCodeErr{code: ExitFailed, err: errors.New(fmt.Sprint(bad, " remote object(s) failed verification; do not rely on them. Make a fresh backup: docker autobackup run"))}
	}
	return nil
}
