package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/docker/cli/cli-plugins/hooks"
	"github.com/docker/cli/cli-plugins/manager"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/spf13/cobra"

	"github.com/docker-autobackup/docker-autobackup/internal/cliconfig"
	"github.com/docker-autobackup/docker-autobackup/internal/state"
)

// The docker CLI (≥ 26.1) calls a plugin's hook subcommand after the
// commands listed for it in config.json, only when hooks are enabled and
// stdout is a terminal:
//
//	docker-autobackup autobackup docker-cli-plugin-hooks '{"RootCmd":"compose up","Flags":{"d":""},"CommandError":""}'
//
// and prints the lines of the returned hooks.HookMessage template under
// "What's next:". The hook cannot change the command's outcome, and a
// plugin that fails or prints garbage is skipped, but a slow one delays the
// user's prompt: the handler reads one small file and never talks to the
// engine.

// pluginName is our name in config.json's "plugins" section, the binary's
// name without the "docker-" prefix.
const pluginName = "autobackup"

// hookedCommands are the commands `hooks enable` registers.
var hookedCommands = []string{"compose up", "compose down"}

// hookBudget bounds the work of the hook handler; past it the handler
// prints nothing. The docker CLI waits for the hook without a timeout.
const hookBudget = 50 * time.Millisecond

// maxStateSize: a larger autobackup.toml is not read by the hook (the
// history is capped far below it).
const maxStateSize = 4 << 20

func newHooksCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks enable|disable",
		Short: "Show backup hints after docker compose up/down (docker CLI hooks)",
		Long: `Turn the docker CLI's plugin hooks on or off for docker autobackup.

With hooks on, "docker compose up" and "docker compose down" end with a hint
such as the age of the project's last backup and the command to make one.
The setting lives in the docker CLI's config.json ($DOCKER_CONFIG, default
~/.docker): "plugins": {"autobackup": {"hooks": "compose up,compose down"}}
and "features": {"hooks": "true"}. Every other setting in the file is kept.

The docker CLI runs hooks only after a command has finished and only when
its output is a terminal; DOCKER_CLI_HOOKS=false in the environment turns
them off whatever the file says.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for \"docker autobackup hooks\"; want enable or disable", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "enable",
			Short: "Show hints after docker compose up/down",
			RunE: func(cmd *cobra.Command, args []string) error {
				return runHooksEnable(dockerCli.Out(), configPath())
			},
		},
		&cobra.Command{
			Use:   "disable",
			Short: "Stop showing hints (removes only what enable added)",
			Long: `Remove docker autobackup's hooks from config.json. "features": {"hooks"} is
removed only if "hooks enable" set it; otherwise it stays, since other
plugins' hooks may rely on it.`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runHooksDisable(dockerCli.Out(), configPath())
			},
		},
	)
	return cmd
}

// configPath is the docker CLI's config.json, honouring DOCKER_CONFIG and
// the global --config flag as the docker CLI does.
func configPath() string { return filepath.Join(config.Dir(), cliconfig.FileName) }

func runHooksEnable(w io.Writer, path string) error {
	res, err := cliconfig.EnableHooks(path, pluginName, hookedCommands)
	if err != nil {
		return configError(err)
	}
	if res.Changed {
		fmt.Fprintf(w, "docker CLI hooks enabled in %s: hints after `docker %s`\n", path, strings.Join(hookedCommands, "` and `docker "))
	} else {
		fmt.Fprintf(w, "docker CLI hooks already enabled in %s\n", path)
	}
	if res.FeatureWasFalse {
		fmt.Fprintln(w, `note: "features": {"hooks"} was "false" and is now "true": this also turns on the hooks of other plugins listed in the file`)
	}
	if name, v, off := hooksOffInEnv(); off {
		fmt.Fprintf(w, "note: %s=%s in your environment overrides config.json: no hints will show while it is set\n", name, v)
	}
	fmt.Fprintln(w, "The docker CLI runs hooks only on a terminal, after the command has finished.")
	return nil
}

func runHooksDisable(w io.Writer, path string) error {
	res, err := cliconfig.DisableHooks(path, pluginName)
	if err != nil {
		return configError(err)
	}
	if res.Changed {
		fmt.Fprintf(w, "docker CLI hooks of docker autobackup disabled in %s\n", path)
	} else {
		fmt.Fprintf(w, "docker CLI hooks of docker autobackup were not enabled in %s\n", path)
	}
	if res.FeatureKept {
		fmt.Fprintln(w, `note: "features": {"hooks"} was left as it is: docker autobackup did not set it`)
	}
	return nil
}

// configError makes a config.json we refuse to edit a usage error (exit 2):
// the user fixes the file.
func configError(err error) error {
	var pe *cliconfig.ParseError
	if errors.As(err, &pe) {
		return usageError(err)
	}
	return err
}

// hooksOffInEnv reports an environment variable that disables the docker
// CLI's hooks, checked in the CLI's order.
func hooksOffInEnv() (name, value string, off bool) {
	for _, k := range []string{"DOCKER_CLI_HOOKS", "DOCKER_CLI_HINTS"} {
		if v := os.Getenv(k); v != "" {
			b, err := strconv.ParseBool(v)
			return k, v, err != nil || !b
		}
	}
	return "", "", false
}

// newCLIHookCommand is the hidden subcommand the docker CLI calls after the
// hooked commands. It never fails and prints nothing unless it has a hint:
// a broken or slow hint must not get in the way of the user's command.
func newCLIHookCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:    metadata.HookSubcommandName + " JSON",
		Hidden: true,
		Args:   cobra.ArbitraryArgs,
		// Replaces the root's PersistentPreRunE: no plugin socket, no
		// docker client, no logging setup. Nothing here may be slow.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			runCLIHook(dockerCli.Out(), args, time.Now())
			return nil
		},
	}
}

func runCLIHook(w io.Writer, args []string, now time.Time) {
	if len(args) != 1 {
		return
	}
	var req manager.HookPluginData
	if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
		return
	}
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	out := make(chan string, 1)
	go func() {
		defer func() {
			if recover() != nil {
				out <- ""
			}
		}()
		out <- hookHint(req, dir, now)
	}()
	var msg string
	select {
	case msg = <-out:
	case <-time.After(hookBudget):
		return // a stuck file system; the goroutine dies with the process
	}
	if msg == "" {
		return
	}
	b, err := json.Marshal(hooks.HookMessage{Type: hooks.NextSteps, Template: templateEscape(msg)})
	if err != nil {
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

// hookHint returns the hint to show after the hooked command req, for the
// project in dir, or "" for none.
func hookHint(req manager.HookPluginData, dir string, now time.Time) string {
	sum, found, err := readSummary(filepath.Join(dir, state.HistoryName))
	if err == nil && !found {
		// An older version kept the summary in the settings file.
		sum, found, err = readSummary(filepath.Join(dir, state.FileName))
	}
	if err != nil {
		return "" // a state file we cannot read: `status` explains, not a hint
	}
	last := ""
	if found && !sum.LastSuccessTime.IsZero() {
		last = ago(now, sum.LastSuccessTime)
	}
	failed := found && sum.LastBackupStatus != "" && sum.LastBackupStatus != state.StatusSuccess && !sum.LastBackupTime.IsZero()

	switch req.RootCmd {
	case "compose up":
		if req.CommandError != "" {
			if last == "" {
				return ""
			}
			return fmt.Sprintf("If this failed start damaged the data, restore the last backup (%s): docker autobackup restore %s", last, sum.LastSuccessID)
		}
	case "compose down":
		if req.CommandError == "" && removedVolumes(req.Flags) {
			if last == "" {
				return ""
			}
			return fmt.Sprintf("The volumes were removed. The last backup (%s) brings them back: docker autobackup restore %s", last, sum.LastSuccessID)
		}
		if req.CommandError != "" {
			return ""
		}
	default:
		return ""
	}

	switch {
	case failed && last != "":
		return fmt.Sprintf("The last backup of this project FAILED (%s); the last good one is from %s. See: docker autobackup status", ago(now, sum.LastBackupTime), last)
	case failed:
		return fmt.Sprintf("The last backup of this project FAILED (%s) and none has succeeded yet. See: docker autobackup status", ago(now, sum.LastBackupTime))
	case last != "":
		return fmt.Sprintf("Last backup of this project: %s (%s). Back up now: docker autobackup run", last, state.StatusSuccess)
	}
	return "No backup of this project yet. Back up now: docker autobackup run"
}

// readSummary reads only the [state] table of autobackup.toml. Unlike
// state.Load it accepts keys it does not know: a newer plugin's file must
// not silence the hint. found is false when there is no file.
func readSummary(path string) (sum state.Summary, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return sum, false, err
	}
	if len(data) > maxStateSize {
		return sum, false, errors.New("state file too large for a hint")
	}
	// state.Save writes [settings] and [state] before the history, which
	// is most of the file: parse only the head when it holds [state].
	if head, ok := beforeHistory(data); ok {
		if s, err := decodeSummary(head); err == nil && !s.LastBackupTime.IsZero() {
			return s, true, nil
		}
	}
	sum, err = decodeSummary(data)
	return sum, err == nil, err
}

func decodeSummary(data []byte) (state.Summary, error) {
	var doc struct {
		State state.Summary `toml:"state"`
	}
	_, err := toml.Decode(string(data), &doc)
	return doc.State, err
}

// beforeHistory returns data up to its first array-of-tables header
// ([[backups]], …), if there is one.
func beforeHistory(data []byte) ([]byte, bool) {
	for off := 0; off < len(data); {
		line := data[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		if bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("[[")) {
			return data[:off], true
		}
		off += len(line)
	}
	return nil, false
}

// removedVolumes reports whether `compose down` was given -v/--volumes. The
// CLI passes only flag names for plugin commands, as written.
func removedVolumes(flags map[string]string) bool {
	for k := range flags {
		if k == "v" || k == "volumes" || (strings.HasPrefix(k, "volumes=") && k != "volumes=false") {
			return true
		}
	}
	return false
}

// ago says how long ago t was, coarsely: a hint, not a report.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now" // clock skew between machines sharing the directory
	case d < time.Minute:
		return "less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// templateEscape makes s print literally through the text/template the
// docker CLI renders hook messages with.
func templateEscape(s string) string {
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}
