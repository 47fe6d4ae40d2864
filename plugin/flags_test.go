package plugin

import (
	"strings"
	"testing"
	"time"

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
