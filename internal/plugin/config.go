package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/app"
	"github.com/docker-autobackup/docker-autobackup/internal/notify"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

type configOptions struct {
	format string
}

func newConfigCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	var o configOptions
	show := func(cmd *cobra.Command, args []string) error {
		return runConfigShow(cmd.Context(), dockerCli.Out(), g, o)
	}
	cmd := &cobra.Command{
		Use:   "config [OPTIONS]",
		Short: "Show or change the project's settings",
		Long: `Show every setting with its value and where it comes from: "file"
(autobackup.toml), "compose" (x-autobackup in the compose file) or "default".
Change one with "config set KEY VALUE", remove it with "config unset KEY".`,
		RunE: show,
	}
	cmd.Flags().StringVar(&o.format, "format", "", `Output format: "json", or empty for a table`)
	showCmd := &cobra.Command{Use: "show [OPTIONS]", Short: "Show every setting (the default)", RunE: show}
	showCmd.Flags().StringVar(&o.format, "format", "", `Output format: "json", or empty for a table`)
	setCmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change a setting (validated first; the file is untouched when invalid)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), dockerCli.Out(), g, args[0], args[1])
		},
	}
	// Flags end at KEY, so a VALUE such as -1 is a value, not a flag:
	// its range check can then say what is wrong with it.
	setCmd.Flags().SetInterspersed(false)
	cmd.AddCommand(
		showCmd,
		setCmd,
		&cobra.Command{
			Use:   "unset KEY",
			Short: "Remove a setting from autobackup.toml, so the compose file's value or the default applies",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runConfigUnset(cmd.Context(), dockerCli.Out(), g, args[0])
			},
		},
	)
	return cmd
}

func newEnableCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "enable",
		Short: "Turn scheduled backups on (config set enabled true)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), dockerCli.Out(), g, "enabled", "true")
		},
	}
}

func newDisableCommand(dockerCli command.Cli, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "disable",
		Short: "Turn scheduled backups off (config set enabled false)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), dockerCli.Out(), g, "enabled", "false")
		},
	}
}

// configEntry is one line of `config --format json`.
type configEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Source  string `json:"source"`
	Help    string `json:"help"`
	Example string `json:"example"`
}

func runConfigShow(ctx context.Context, w io.Writer, g *globalOptions, o configOptions) error {
	if o.format != "" && o.format != "json" {
		return usageErrorf("--format %q: want json (or nothing for a table)", o.format)
	}
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	settings := append(env.State.Settings.Describe(env.Compose), env.State.Remote.Describe(env.ComposeRemote)...)
	for i := range settings {
		settings[i].Value = displayValue(settings[i].Key, settings[i].Value)
	}
	if o.format == "json" {
		out := make([]configEntry, len(settings))
		for i, s := range settings {
			out[i] = configEntry(s)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "Settings of project %s (%s)\n\n", env.Project.Name, env.StatePath)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tDESCRIPTION")
	for _, s := range settings {
		v := s.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Key, v, s.Source, s.Help)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nChange one with: docker autobackup config set KEY VALUE")
	return nil
}

func runConfigSet(ctx context.Context, w io.Writer, g *globalOptions, key, value string) error {
	if isRemoteKey(key) {
		return changeRemote(ctx, w, g, key, func(r *state.Remote) error { return r.Set(key, value) })
	}
	return changeSetting(ctx, w, g, key, func(s *state.Settings, dir string) error {
		return s.Set(key, value, dir)
	})
}

func runConfigUnset(ctx context.Context, w io.Writer, g *globalOptions, key string) error {
	if isRemoteKey(key) {
		return changeRemote(ctx, w, g, key, func(r *state.Remote) error { return r.Unset(key) })
	}
	return changeSetting(ctx, w, g, key, func(s *state.Settings, _ string) error {
		return s.Unset(key)
	})
}

func isRemoteKey(key string) bool {
	return strings.HasPrefix(state.NormalizeKey(key), state.RemotePrefix)
}

// changeRemote applies change to the [remote] table and reports the new
// effective value, like changeSetting.
func changeRemote(ctx context.Context, w io.Writer, g *globalOptions, key string, change func(r *state.Remote) error) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	find := func(r state.Remote) state.Setting {
		for _, d := range r.Describe(env.ComposeRemote) {
			if d.Key == state.NormalizeKey(key) {
				return d
			}
		}
		return state.Setting{}
	}
	before := find(env.State.Remote)
	var after state.Setting
	err = state.Update(env.StatePath, func(f *state.File) error {
		if err := change(&f.Remote); err != nil {
			return usageError(err)
		}
		after = find(f.Remote)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s = %s (from %s; was %s from %s)\n", after.Key, quoteValue(after.Value), after.Source, quoteValue(before.Value), before.Source)
	if after.Key == "remote.url" && after.Value != "" {
		fmt.Fprintln(w, "Runs now upload each backup after the services are back. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or remote.access_key_file and remote.secret_key_file. Upload what exists now: docker autobackup push")
	}
	return nil
}

// changeSetting applies change to the [settings] of autobackup.toml and
// reports the new effective value. An invalid change is a usage error and
// leaves the file as it was (state.Update writes nothing when fn fails).
//
// It does not take the project lock: a backup holds it for minutes, and
// state.Update's load-change-save takes milliseconds, as does the backup's
// own update of the file at its end.
func changeSetting(ctx context.Context, w io.Writer, g *globalOptions, key string, change func(s *state.Settings, dir string) error) error {
	env, err := loadProject(ctx, g)
	if err != nil {
		return err
	}
	before := describe(env.State.Settings, env.Compose, key)
	before.Value = displayValue(before.Key, before.Value)
	var after state.Setting
	var now state.Settings
	err = state.Update(env.StatePath, func(f *state.File) error {
		if err := change(&f.Settings, env.Dir); err != nil {
			return usageError(err)
		}
		if retentionKeys[canonicalKey(key)] {
			p := app.RetentionPolicy(f.Settings.Resolve(env.Compose), f, nil)
			if err := p.Validate(); err != nil {
				return app.PolicyError(err)
			}
		}
		now = f.Settings
		after = describe(f.Settings, env.Compose, key)
		after.Value = displayValue(after.Key, after.Value)
		return nil
	})
	if err != nil {
		return err
	}
	if after.Key == "" { // describe found no such key: cannot happen after a successful change
		return nil
	}
	switch {
	case after.Value == before.Value && after.Source == before.Source:
		fmt.Fprintf(w, "%s = %s (unchanged, from %s)\n", after.Key, quoteValue(after.Value), after.Source)
	default:
		fmt.Fprintf(w, "%s = %s (from %s; was %s from %s)\n", after.Key, quoteValue(after.Value), after.Source, quoteValue(before.Value), before.Source)
	}
	r := now.Resolve(env.Compose)
	switch after.Key {
	case "enabled", "schedule":
		if !r.Enabled {
			fmt.Fprintln(w, "Scheduled backups are off for this project. Turn them on: docker autobackup enable")
			if after.Key == "enabled" {
				fmt.Fprintln(w, "If you installed a host scheduler entry, remove it: docker autobackup schedule remove")
			}
			break
		}
		fmt.Fprintf(w, "Schedule %s; next run %s. Something must run it: docker autobackup daemon, or docker autobackup schedule install (run it again after changing the schedule).\n",
			quoteValue(r.Schedule), nextRunString(r.Schedule))
	case "directory":
		fmt.Fprintf(w, "New backups go to %s; existing backups stay where they are.\n", r.BackupDir(env.Dir))
	}
	if old := env.Settings; retentionKeys[after.Key] && old.RetentionDays > 0 && r.RetentionDays == 0 && after.Key != "retention_days" {
		fmt.Fprintf(w, "retention_days (was %d) no longer applies: its default is off once a keep_* rule is set. To keep every backup of the last %d days too: docker autobackup config set retention_days %d\n",
			old.RetentionDays, old.RetentionDays, old.RetentionDays)
	}
	if retentionKeys[after.Key] {
		fmt.Fprintln(w, "See what prune would keep: docker autobackup prune --dry-run")
	}
	return nil
}

// retentionKeys are the settings that make up the retention policy, checked
// together when one of them changes.
var retentionKeys = map[string]bool{
	"retention_days": true, "keep_min": true, "keep_last": true, "keep_hourly": true, "keep_daily": true,
	"keep_weekly": true, "keep_monthly": true, "keep_yearly": true, "keep_tagged": true, "prune_guard": true,
}

// describe returns key's entry of s.Describe(composeLayer).
func describe(s, composeLayer state.Settings, key string) state.Setting {
	probe := state.Settings{}
	if probe.Unset(key) != nil {
		return state.Setting{}
	}
	for _, d := range s.Describe(composeLayer) {
		if d.Key == canonicalKey(key) {
			return d
		}
	}
	return state.Setting{}
}

// canonicalKey spells key as state does (schedule, retention_days): the
// user may type Retention-Days.
func canonicalKey(key string) string {
	for _, k := range state.Keys() {
		if state.NormalizeKey(key) == k {
			return k
		}
	}
	return key
}

func quoteValue(v string) string {
	for _, c := range v {
		if c == ' ' || c == '\t' || c == '"' {
			return fmt.Sprintf("%q", v)
		}
	}
	if v == "" {
		return `""`
	}
	return v
}

// displayValue shows a setting's value with the credentials in its URLs
// masked (notify, ping_url).
func displayValue(key, value string) string {
	if !state.IsSecret(key) {
		return value
	}
	return notify.NewRedactor(state.SplitURLs(value)...).Scrub(value)
}
