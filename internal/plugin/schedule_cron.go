package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// cronLine renders the crontab entry: the marker comment and the job line.
// In a crontab an unescaped % ends the command.
func cronLine(expr, dir string, j hostJob) string {
	var parts []string
	for _, e := range j.env {
		k, v, _ := strings.Cut(e, "=")
		parts = append(parts, k+"="+text.ShellQuote(v))
	}
	for _, a := range j.args {
		parts = append(parts, text.ShellQuote(a))
	}
	cmd := strings.Join(parts, " ") + " >>" + text.ShellQuote(j.logFile) + " 2>&1"
	cmd = strings.ReplaceAll(cmd, "%", `\%`)
	return entryMarker(dir) + markerTail + "\n" + expr + " " + cmd + "\n"
}

// cronExpr returns expr as a crontab accepts it, or why it cannot be.
func cronExpr(expr string) (string, error) {
	e := strings.Join(strings.Fields(expr), " ")
	switch {
	case strings.HasPrefix(e, "@every"):
		return "", usageErrorf("schedule %q: crontab has no @every; use a cron expression (docker autobackup config set schedule \"0 */6 * * *\"), or docker autobackup daemon", expr)
	case strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ="):
		return "", usageErrorf("schedule %q: a time zone per entry is not portable across crontabs; use --systemd, or docker autobackup daemon, or a schedule in the host's time zone", expr)
	}
	return e, nil
}

// removeCronEntry returns content without the entry for dir (the marker
// line and the line after it) and whether there was one.
func removeCronEntry(content, dir string) (string, bool) {
	lines := strings.SplitAfter(content, "\n")
	var out []string
	found := false
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], entryMarker(dir)+"(") {
			found = true
			if i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "#") {
				i++
			}
			continue
		}
		out = append(out, lines[i])
	}
	return strings.Join(out, ""), found
}

// crontab is where cron entries live.
type crontab interface {
	read(ctx context.Context) (string, error)
	write(ctx context.Context, content string) error
	String() string
}

type crontabFile string

func (f crontabFile) read(context.Context) (string, error) {
	data, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(data), err
}

func (f crontabFile) write(_ context.Context, content string) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(string(f)); err == nil {
		mode = fi.Mode().Perm()
	}
	return atomicfile.WriteFile(string(f), []byte(content), mode)
}

func (f crontabFile) String() string { return string(f) }

// userCrontab is the invoking user's crontab, through the crontab command.
type userCrontab struct{}

func (userCrontab) read(ctx context.Context) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-l")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(strings.ToLower(stderr.String()), "no crontab") {
			return "", nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("crontab -l: %w; install cron (Debian, Ubuntu: sudo apt-get install cron), or use --systemd or docker autobackup daemon", err)
		}
		return "", fmt.Errorf("crontab -l: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (userCrontab) write(ctx context.Context, content string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-")
	cmd.Stdin = strings.NewReader(content)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("crontab -: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (userCrontab) String() string { return "your crontab" }
