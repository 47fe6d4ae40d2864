package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/notify"
	"github.com/docker-autobackup/docker-autobackup/state"
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
	cmd.AddCommand(
		showCmd,
		&cobra.Command{
			Use:   "set KEY VALUE",
			Short: "Change a setting (validated first; the file is untouched when invalid)",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runConfigSet(cmd.Context(), dockerCli.Out(), g, args[0], args[1])
			},
		},
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
	settings := env.State.Settings.Describe(env.Compose)
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
	return changeSetting(ctx, w, g, key, func(s *state.Settings, dir string) error {
		return s.Set(key, value, dir)
	})
}

func runConfigUnset(ctx context.Context, w io.Writer, g *globalOptions, key string) error {
	return changeSetting(ctx, w, g, key, func(s *state.Settings, _ string) error {
		return s.Unset(key)
	})
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
	return nil
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
		if normalizeKey(key) == k {
			return k
		}
	}
	return key
}

func normalizeKey(key string) string {
	out := make([]byte, 0, len(key))
	for _, c := range []byte(key) {
		switch {
		case c == '-':
			c = '_'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ' || c == '\t':
			continue
		}
		out = append(out, c)
	}
	return string(out)
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
