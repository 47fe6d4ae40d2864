// Package text holds the small string rules several packages share, so
// each has one source: folding a message onto one line, cutting it short,
// quoting for a POSIX shell.
package text

import (
	"regexp"
	"strings"
)

// OneLine folds s onto one line: runs of white space, newlines included,
// become one space; leading and trailing space goes.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Truncate keeps the first n bytes of s, marking a cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// ShellQuote quotes s for a POSIX shell, leaving it bare when it needs no
// quoting.
func ShellQuote(s string) string {
	if s != "" && shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
