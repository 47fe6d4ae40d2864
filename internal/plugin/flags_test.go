package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/pflag"
)

func TestLockTimeoutFlag(t *testing.T) {
	var d time.Duration
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	lockTimeoutFlag(fs, &d)
	if d != -1 {
		t.Errorf("unset = %v, want -1", d)
	}
	if u := fs.FlagUsages(); strings.Contains(u, "-1ns") || strings.Contains(u, "(default") && !strings.Contains(u, "(default: the lock_timeout") {
		t.Errorf("help shows a raw default: %s", u)
	}
	if err := fs.Parse([]string{"--lock-timeout", "5m"}); err != nil || d != 5*time.Minute {
		t.Errorf("--lock-timeout 5m = %v, %v", d, err)
	}
	if err := fs.Parse([]string{"--lock-timeout", "-3s"}); err == nil {
		t.Error("a negative timeout was accepted")
	}
}

// TestHelpProjectFlags: commands that need no project do not offer the
// project-selection flags in their help; the others do.
func TestHelpProjectFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"version", "--help"}, false},
		{[]string{"hooks", "enable", "--help"}, false},
		{[]string{"run", "--help"}, true},
		{[]string{"version", "--help"}, false}, // hiding does not stick to the flags
		{[]string{"status", "--help"}, true},
	} {
		var out bytes.Buffer
		cli, err := command.NewDockerCli(command.WithOutputStream(&out), command.WithErrorStream(&out))
		if err != nil {
			t.Fatal(err)
		}
		root := NewRootCommand(cli)
		root.SetArgs(tc.args)
		root.SetOut(&out)
		root.SetErr(&out)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, flag := range []string{"--project-name", "--project-directory", "--env-file", "--profile"} {
			if got := strings.Contains(out.String(), flag); got != tc.want {
				t.Errorf("%v: help shows %s: %v, want %v\n%s", tc.args, flag, got, tc.want, out.String())
			}
		}
	}
}
