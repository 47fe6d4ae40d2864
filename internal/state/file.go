package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// FileName is the name of the state file, in the project directory.
const FileName = "autobackup.toml"

// MaxHistory is how many records of each kind (backups, restores, prunes)
// Save keeps.
const MaxHistory = 500

// Statuses of a backup or restore record.
const (
	StatusSuccess     = "success"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted" // the process was stopped before it could finish
)

// File is the content of autobackup.toml.
type File struct {
	Settings Settings  `toml:"settings,omitempty"`
	Remote   Remote    `toml:"remote,omitempty"`
	State    Summary   `toml:"state,omitempty"`
	Backups  []Backup  `toml:"backups,omitempty"`
	Restores []Restore `toml:"restores,omitempty"`
	Prunes   []Prune   `toml:"prunes,omitempty"`
	Monitor  Monitor   `toml:"monitor,omitempty"`
}

// Summary is the [state] table: the outcome of the latest backup, for
// status output and monitoring without reading the history.
type Summary struct {
	LastBackupID     string    `toml:"last_backup_id,omitempty"`
	LastBackupTime   time.Time `toml:"last_backup_time,omitempty"`
	LastBackupStatus string    `toml:"last_backup_status,omitempty"` // StatusSuccess or StatusFailed
	LastSuccessID    string    `toml:"last_success_id,omitempty"`
	LastSuccessTime  time.Time `toml:"last_success_time,omitempty"`
}

// Backup is one [[backups]] record.
type Backup struct {
	ID              string    `toml:"id"`
	Tag             string    `toml:"tag,omitempty"`
	Started         time.Time `toml:"started"`
	Finished        time.Time `toml:"finished"`
	Status          string    `toml:"status"`
	DurationSeconds float64   `toml:"duration_seconds"`
	DowntimeSeconds float64   `toml:"downtime_seconds"`
	Volumes         []string  `toml:"volumes"`
	Path            string    `toml:"path"` // relative to the project directory when inside it, e.g. backups/<id>
	SizeBytes       int64     `toml:"size_bytes"`
	Error           string    `toml:"error,omitempty"`
	Warnings        []string  `toml:"warnings,omitempty"` // what the run warned about (fallbacks), for status
	// ServiceDowntime is each stopped service's downtime in seconds.
	ServiceDowntime map[string]float64 `toml:"service_downtime,omitempty"`
	Pruned          time.Time          `toml:"pruned,omitempty"` // when retention deleted it; zero while it exists
	// Verified is when "docker autobackup verify" last found the backup
	// sound; VerifyError what the last verify that failed found, cleared
	// by a later one that passes. Retention counts a backup with a
	// VerifyError as unsuccessful.
	Verified     time.Time `toml:"verified,omitempty"`
	VerifyError  string    `toml:"verify_error,omitempty"`
	Remote       string    `toml:"remote,omitempty"`       // UploadDone or UploadFailed; empty without a remote
	RemoteError  string    `toml:"remote_error,omitempty"` // why the upload failed
	RemotePruned time.Time `toml:"remote_pruned,omitempty"`
}

// Restore is one [[restores]] record.
type Restore struct {
	ID       string    `toml:"id"`
	BackupID string    `toml:"backup_id"`
	Started  time.Time `toml:"started"`
	Finished time.Time `toml:"finished"`
	Volumes  []string  `toml:"volumes"`
	Status   string    `toml:"status"`
	Error    string    `toml:"error,omitempty"`
}

// Prune is one [[prunes]] record: backups deleted by retention.
type Prune struct {
	Time    time.Time `toml:"time"`
	Deleted []string  `toml:"deleted"`
	Reason  string    `toml:"reason"`
}

// ParseError reports a file that Load could not accept: a TOML syntax
// error, an unknown key or an invalid value. The file is left as it is.
type ParseError struct {
	Path string
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key, e.g. settings.schedule; empty for syntax errors
	Msg  string
}

func (e *ParseError) Error() string {
	where := e.Path
	if e.Line > 0 {
		where += " line " + strconv.Itoa(e.Line)
	}
	return where + ": " + e.Msg + "; fix the file by hand (it was not changed)"
}

// readFile reads and parses one of the two files; a missing one is an
// empty *File and nil data.
func readFile(path string) (*File, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := parse(path, data)
	return f, data, err
}

func parse(path string, data []byte) (*File, error) {
	// Decoding into a map first separates syntax errors from type errors,
	// which the library reports alike.
	var syntax map[string]any
	if _, err := toml.Decode(string(data), &syntax); err != nil {
		pe := &ParseError{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		var te toml.ParseError
		if errors.As(err, &te) {
			pe.Line, pe.Msg = te.Position.Line, te.Message
			// An error at a newline is reported on the next line; count
			// from the byte offset instead.
			if s := te.Position.Start; s > 0 && s < len(data) {
				pe.Line = bytes.Count(data[:s], []byte("\n")) + 1
			}
		}
		return nil, pe
	}
	var f File
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, decodeError(path, data, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := []string(und[0])
		msg := fmt.Sprintf("unknown key %s; this version knows the tables [settings] and [remote] (autobackup.toml), [state], [[backups]], [[restores]], [[prunes]] and [monitor] (autobackup.history.toml)", und[0])
		if len(k) == 2 && k[0] == "settings" {
			msg = fmt.Sprintf("unknown setting %q; valid settings: %s", k[1], strings.Join(Keys(), ", "))
		}
		if len(k) == 2 && k[0] == "remote" {
			msg = fmt.Sprintf("unknown remote setting %q; valid: %s", k[1], strings.Join(RemoteKeys(), ", "))
		}
		return nil, &ParseError{Path: path, Line: keyLine(data, k, -1), Key: und[0].String(), Msg: msg}
	}
	if errs := f.validate(); len(errs) > 0 {
		e := errs[0]
		return nil, &ParseError{Path: path, Line: keyLine(data, e.key, e.index), Key: toml.Key(e.key).String(), Msg: e.msg}
	}
	return &f, nil
}

var libErr = regexp.MustCompile(`(?s)^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

var libTypeErr = regexp.MustCompile(`^incompatible types: TOML value has type ([\w-]+); destination has type ([\w-]+)$`)

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// decodeError turns an error from decoding into File (a value of the wrong
// type, a duration that does not parse) into a *ParseError naming the key.
func decodeError(path string, data []byte, err error) *ParseError {
	pe := &ParseError{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	var key, msg string
	valueFirst := false
	var te toml.ParseError
	if errors.As(err, &te) {
		pe.Line, key, msg, valueFirst = te.Position.Line, te.LastKey, te.Message, true
	} else if m := libErr.FindStringSubmatch(err.Error()); m != nil {
		pe.Line, _ = strconv.Atoi(m[1])
		key, _ = strconv.Unquote(m[2])
		msg = m[3]
	}
	if key == "" {
		return pe
	}
	pe.Key = key
	short := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		short = key[i+1:]
	}
	if m := libTypeErr.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("want %s %s, not %s %s", article(m[2]), m[2], article(m[1]), m[1])
	}
	switch {
	case valueFirst:
		pe.Msg = short + " = " + msg
	case strings.HasPrefix(key, "settings."):
		pe.Msg = short + ": " + msg
	default:
		pe.Msg = key + ": " + msg
	}
	if strings.HasPrefix(key, "settings.") {
		if sp, err := lookup(short); err == nil && sp.name == short {
			pe.Msg += "; example: " + sp.name + " = " + sp.exampleLiteral()
		}
	}
	return pe
}

func (f *File) marshalWith(header string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RecordBackup appends b to the history. A finished backup (success,
// failed or interrupted) also updates the [state] summary unless a later
// run is already recorded there; an interrupted run counts as failed.
// Times are stored in UTC to the second.
func (f *File) RecordBackup(b Backup) {
	b.Started, b.Finished, b.Pruned = roundTime(b.Started), roundTime(b.Finished), roundTime(b.Pruned)
	b.RemotePruned = roundTime(b.RemotePruned)
	f.Backups = append(f.Backups, b)
	switch b.Status {
	case StatusSuccess, StatusFailed, StatusInterrupted:
	default:
		return
	}
	if f.State.LastBackupTime.IsZero() || !b.Started.Before(f.State.LastBackupTime) {
		f.State.LastBackupID, f.State.LastBackupTime = b.ID, b.Started
		f.State.LastBackupStatus = StatusFailed
		if b.Status == StatusSuccess {
			f.State.LastBackupStatus = StatusSuccess
		}
	}
	if b.Status == StatusSuccess && (f.State.LastSuccessTime.IsZero() || !b.Started.Before(f.State.LastSuccessTime)) {
		f.State.LastSuccessID, f.State.LastSuccessTime = b.ID, b.Started
	}
}

// RecordRestore appends r to the history, times in UTC to the second.
func (f *File) RecordRestore(r Restore) {
	r.Started, r.Finished = roundTime(r.Started), roundTime(r.Finished)
	f.Restores = append(f.Restores, r)
}

// RecordPrune appends p to the history and marks the deleted backups as
// pruned at p.Time.
func (f *File) RecordPrune(p Prune) {
	p.Time = roundTime(p.Time)
	f.Prunes = append(f.Prunes, p)
	for _, id := range p.Deleted {
		if b, ok := f.FindBackup(id); ok {
			b.Pruned = p.Time
		}
	}
}

// FindBackup returns the newest backup record with id, pointing into
// f.Backups so the caller can change it.
func (f *File) FindBackup(id string) (*Backup, bool) {
	for i := len(f.Backups) - 1; i >= 0; i-- {
		if f.Backups[i].ID == id {
			return &f.Backups[i], true
		}
	}
	return nil, false
}

func roundTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// normalized returns a copy of f for writing: times in UTC, history capped.
func (f *File) normalized() *File {
	out := &File{Settings: f.Settings, Remote: f.Remote, State: f.State, Monitor: f.Monitor.normalized()}
	out.State.LastBackupTime = utc(out.State.LastBackupTime)
	out.State.LastSuccessTime = utc(out.State.LastSuccessTime)
	gone := func(b Backup) bool { return !b.Pruned.IsZero() || b.Status != StatusSuccess }
	for _, b := range capRecords(f.Backups, gone) {
		b.Started, b.Finished, b.Pruned = utc(b.Started), utc(b.Finished), utc(b.Pruned)
		b.RemotePruned = utc(b.RemotePruned)
		out.Backups = append(out.Backups, b)
	}
	for _, r := range capRecords(f.Restores, nil) {
		r.Started, r.Finished = utc(r.Started), utc(r.Finished)
		out.Restores = append(out.Restores, r)
	}
	for _, p := range capRecords(f.Prunes, nil) {
		p.Time = utc(p.Time)
		out.Prunes = append(out.Prunes, p)
	}
	return out
}

// capRecords keeps the newest MaxHistory records. Records for which
// dropFirst is true are dropped before others, oldest first, so the history
// of backups that still exist outlives that of deleted or failed ones.
func capRecords[T any](recs []T, dropFirst func(T) bool) []T {
	excess := len(recs) - MaxHistory
	if excess <= 0 {
		return recs
	}
	drop := make([]bool, len(recs))
	if dropFirst != nil {
		for i := 0; i < len(recs) && excess > 0; i++ {
			if dropFirst(recs[i]) {
				drop[i] = true
				excess--
			}
		}
	}
	for i := 0; i < len(recs) && excess > 0; i++ {
		if !drop[i] {
			drop[i] = true
			excess--
		}
	}
	out := make([]T, 0, MaxHistory)
	for i, r := range recs {
		if !drop[i] {
			out = append(out, r)
		}
	}
	return out
}

// validate returns the invalid values in f, in file order.
func (f *File) validate() []valueError {
	errs := append(f.Settings.validate(), f.Remote.validate()...)
	bad := func(key []string, index int, format string, args ...any) {
		errs = append(errs, valueError{key: key, index: index, msg: fmt.Sprintf(format, args...)})
	}
	checkTime := func(key []string, index int, t time.Time) {
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			bad(key, index, "%s = %s: want a date between years 0 and 9999 in UTC", key[len(key)-1], t.Format(time.RFC3339))
		}
	}
	statuses := []string{StatusSuccess, StatusFailed, StatusInterrupted}
	checkStatus := func(table string, i int, s string) {
		if !slices.Contains(statuses, s) {
			bad([]string{table, "status"}, i, "status = %q: want %q, %q or %q", s, StatusSuccess, StatusFailed, StatusInterrupted)
		}
	}
	checkNumber := func(table, key string, i int, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			bad([]string{table, key}, i, "%s = %v: want a number of 0 or more", key, v)
		}
	}

	if s := f.State.LastBackupStatus; s != "" && !slices.Contains(statuses, s) {
		bad([]string{"state", "last_backup_status"}, -1, "last_backup_status = %q: want %q or %q", s, StatusSuccess, StatusFailed)
	}
	checkTime([]string{"state", "last_backup_time"}, -1, f.State.LastBackupTime)
	checkTime([]string{"state", "last_success_time"}, -1, f.State.LastSuccessTime)
	for i, b := range f.Backups {
		checkTime([]string{"backups", "started"}, i, b.Started)
		checkTime([]string{"backups", "finished"}, i, b.Finished)
		checkTime([]string{"backups", "pruned"}, i, b.Pruned)
		checkTime([]string{"backups", "remote_pruned"}, i, b.RemotePruned)
		if b.Remote != "" && b.Remote != UploadDone && b.Remote != UploadFailed {
			bad([]string{"backups", "remote"}, i, "remote = %q: want %q or %q", b.Remote, UploadDone, UploadFailed)
		}
		checkStatus("backups", i, b.Status)
		checkNumber("backups", "duration_seconds", i, b.DurationSeconds)
		checkNumber("backups", "downtime_seconds", i, b.DowntimeSeconds)
		if b.SizeBytes < 0 {
			bad([]string{"backups", "size_bytes"}, i, "size_bytes = %d: want a number of 0 or more", b.SizeBytes)
		}
	}
	for i, r := range f.Restores {
		checkTime([]string{"restores", "started"}, i, r.Started)
		checkTime([]string{"restores", "finished"}, i, r.Finished)
		checkStatus("restores", i, r.Status)
	}
	for i, p := range f.Prunes {
		checkTime([]string{"prunes", "time"}, i, p.Time)
	}
	return errs
}

// keyLine finds the line of key in data, best effort: the TOML library does
// not report positions of decoded keys. nth selects the nth table of an
// array of tables ([[backups]]); -1 accepts any.
func keyLine(data []byte, key []string, nth int) int {
	var table []string
	tableIndex := -1
	count := map[string]int{}
	closing := "" // delimiter of a multi-line string we are inside
	for i, line := range strings.Split(string(data), "\n") {
		if closing != "" {
			if strings.Count(line, closing)%2 == 1 {
				closing = ""
			}
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, "[") {
			array := strings.HasPrefix(t, "[[")
			name := strings.TrimLeft(t, "[")
			if j := strings.Index(name, "]"); j >= 0 {
				name = name[:j]
			}
			table = splitKey(name)
			tableIndex = -1
			if array {
				j := strings.Join(table, "\x00")
				tableIndex = count[j]
				count[j]++
			}
			if slices.Equal(table, key) && (nth < 0 || tableIndex == nth) {
				return i + 1
			}
			continue
		}
		eq := keyEnd(t)
		if eq < 0 {
			continue
		}
		full := append(slices.Clone(table), splitKey(t[:eq])...)
		if slices.Equal(full, key) && (nth < 0 || tableIndex < 0 || tableIndex == nth) {
			return i + 1
		}
		for _, delim := range []string{`"""`, `'''`} {
			if strings.Count(t[eq:], delim)%2 == 1 {
				closing = delim
			}
		}
	}
	return 0
}

// keyEnd returns the index of the "=" that ends the key of a key/value
// line, skipping quoted key parts.
func keyEnd(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		}
	}
	return -1
}

// splitKey splits a dotted TOML key into its unquoted parts.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}
