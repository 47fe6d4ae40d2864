package state

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-autobackup/docker-autobackup/internal/archive"
	"github.com/docker-autobackup/docker-autobackup/internal/compose"
	"github.com/docker-autobackup/docker-autobackup/internal/notify"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Snapshot modes, the values of the snapshot setting.
const (
	SnapshotAuto   = archive.ModeAuto   // staged when the disk has room, else stream
	SnapshotStaged = archive.ModeStaged // copy volumes while stopped, compress after restart
	SnapshotStream = archive.ModeStream // compress while the services are stopped
)

// Settings is the [settings] table of autobackup.toml, or the x-autobackup
// extension of a compose file. A nil field is a key the user did not set:
// it is not written and falls through to the next layer (see Resolve).
// Change fields with Set and Unset, which validate; Load and Save validate
// too.
type Settings struct {
	Enabled          *bool     `toml:"enabled,omitempty"`
	Schedule         *string   `toml:"schedule,omitempty"`
	RetentionDays    *int      `toml:"retention_days,omitempty"`
	KeepMin          *int      `toml:"keep_min,omitempty"`
	KeepLast         *int      `toml:"keep_last,omitempty"`
	KeepHourly       *int      `toml:"keep_hourly,omitempty"`
	KeepDaily        *int      `toml:"keep_daily,omitempty"`
	KeepWeekly       *int      `toml:"keep_weekly,omitempty"`
	KeepMonthly      *int      `toml:"keep_monthly,omitempty"`
	KeepYearly       *int      `toml:"keep_yearly,omitempty"`
	KeepTagged       *int      `toml:"keep_tagged,omitempty"`
	PruneGuard       *float64  `toml:"prune_guard,omitempty"`
	Directory        *string   `toml:"directory,omitempty"`
	StopTimeout      *Duration `toml:"stop_timeout,omitempty"`
	StartTimeout     *Duration `toml:"start_timeout,omitempty"`
	HealthTimeout    *Duration `toml:"health_timeout,omitempty"`
	PollInterval     *Duration `toml:"poll_interval,omitempty"`
	CompressionLevel *int      `toml:"compression_level,omitempty"`
	Snapshot         *string   `toml:"snapshot,omitempty"`
	CatchUp          *bool     `toml:"catch_up,omitempty"`
	LockTimeout      *Duration `toml:"lock_timeout,omitempty"`
	Notify           *[]string `toml:"notify,omitempty"`
	NotifyOn         *string   `toml:"notify_on,omitempty"`
	NotifyTimeout    *Duration `toml:"notify_timeout,omitempty"`
	PingURL          *string   `toml:"ping_url,omitempty"`
	MetricsFile      *string   `toml:"metrics_file,omitempty"`
}

// Resolved is the effective configuration of a project, every layer applied.
type Resolved struct {
	Enabled          bool
	Schedule         string
	RetentionDays    int // 0: off (the default once a keep_* count rule is set)
	KeepMin          int
	KeepLast         int // 0: off, like the other keep_* rules
	KeepHourly       int
	KeepDaily        int
	KeepWeekly       int
	KeepMonthly      int
	KeepYearly       int
	KeepTagged       int
	PruneGuard       float64 // 0: off
	Directory        string  // as written; relative paths are relative to the project directory (see BackupDir)
	StopTimeout      time.Duration
	StartTimeout     time.Duration
	HealthTimeout    time.Duration
	PollInterval     time.Duration
	LockTimeout      time.Duration
	CompressionLevel int // 1..4: zstd fastest, default, better, best
	Snapshot         string
	CatchUp          bool
	Notify           []string      // shoutrrr URLs
	NotifyOn         string        // NotifyOnFailure or NotifyOnAlways
	NotifyTimeout    time.Duration // bound of each notification, ping and metrics write
	PingURL          string        // dead man's switch; "" for none
	MetricsFile      string        // as written; relative paths are relative to the project directory (see MetricsPath)
}

// When notifications are sent, the values of notify_on.
const (
	NotifyOnFailure = "failure" // failed or interrupted runs, and services not back
	NotifyOnAlways  = "always"  // every run
)

// MetricsPath returns the metrics file, relative paths resolved against
// projectDir; "" when none is set.
func (r Resolved) MetricsPath(projectDir string) string {
	if r.MetricsFile == "" {
		return ""
	}
	return resolveDir(r.MetricsFile, projectDir)
}

// BackupDir returns the backup directory, relative paths resolved against
// projectDir.
func (r Resolved) BackupDir(projectDir string) string {
	return resolveDir(r.Directory, projectDir)
}

// Setting describes one key for `config show`.
type Setting struct {
	Key     string
	Value   string // effective value, formatted as Set accepts it
	Source  string // SourceDefault, SourceCompose or SourceFile
	Help    string
	Example string // a valid value, as typed on the command line
}

// Sources of a setting's value, from lowest to highest precedence.
const (
	SourceDefault = "default"
	SourceCompose = "compose"
	SourceFile    = "file"
)

// Duration is a time.Duration written in autobackup.toml as a string such
// as "30s" or "1h30m".
type Duration time.Duration

// String formats d like time.Duration.String without trailing zero units
// ("5m", not "5m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts what
// time.ParseDuration accepts; ranges are checked by validation, so the
// error can name the key.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q: %s", b, durationWant)
	}
	*d = Duration(v)
	return nil
}

const durationWant = "want a duration with a unit, like 30s, 5m or 1h30m"

// keySpec ties a setting's name to its field, parser and documentation.
// parse returns the typed value (bool, string, int or Duration) or an error
// describing what is wrong with it, without the key.
type keySpec struct {
	name    string
	help    string
	example string
	secret  bool                  // values hold credentials: errors show them redacted
	field   func(s *Settings) any // pointer to the field: **bool, **string, **int, **Duration or **[]string
	parse   func(value, projectDir string) (any, error)
}

var specs = []keySpec{
	{
		name: "enabled", example: "true",
		help:  "run backups on the schedule (the daemon and `run --if-enabled` from a host scheduler act only when true)",
		field: func(s *Settings) any { return &s.Enabled },
		parse: parseBool,
	},
	{
		name: "schedule", example: "0 2 * * *",
		help:  "when to back up: cron with 5 fields (minute hour day month weekday), or @daily, @hourly, @every 6h",
		field: func(s *Settings) any { return &s.Schedule },
		parse: func(v, _ string) (any, error) {
			if _, err := parseSchedule(v); err != nil {
				return nil, err
			}
			return v, nil
		},
	},
	{
		name: "retention_days", example: "14",
		help:  "keep every backup younger than this many days; 0 = off (the default is 7 while no keep_last/hourly/daily/weekly/monthly/yearly is set, else 0)",
		field: func(s *Settings) any { return &s.RetentionDays },
		parse: parseIntRange(0, 36500, "want a whole number of days from 0 (off) to 36500"),
	},
	{
		name: "keep_min", example: "3",
		help:  "always keep at least this many successful backups, however old",
		field: func(s *Settings) any { return &s.KeepMin },
		parse: parseIntRange(1, 1_000_000, "want a whole number of at least 1"),
	},
	keepRule("keep_last", "5", "keep the newest N successful backups"),
	keepRule("keep_hourly", "24", "keep the newest successful backup of each of the last N hours that have one"),
	keepRule("keep_daily", "7", "keep the newest successful backup of each of the last N days that have one"),
	keepRule("keep_weekly", "4", "keep the newest successful backup of each of the last N ISO weeks (Monday to Sunday) that have one"),
	keepRule("keep_monthly", "12", "keep the newest successful backup of each of the last N months that have one"),
	keepRule("keep_yearly", "5", "keep the newest successful backup of each of the last N years that have one"),
	keepRule("keep_tagged", "5", "keep the newest N tagged backups (run --tag); tagged backups then take no part in the other keep_* rules"),
	{
		name: "prune_guard", example: "0.5",
		help:  "stop pruning when the newest backup holds less than this fraction of the data (uncompressed) of the one before, or nothing; 0 = off",
		field: func(s *Settings) any { return &s.PruneGuard },
		parse: parseFraction,
	},
	{
		name: "directory", example: "./backups",
		help:  "where backups are written; relative paths are relative to the project directory",
		field: func(s *Settings) any { return &s.Directory },
		parse: parseDirectory,
	},
	{
		name: "stop_timeout", example: "30s",
		help:  "how long services get to stop before they are killed",
		field: func(s *Settings) any { return &s.StopTimeout },
		parse: parseDuration(0),
	},
	{
		name: "start_timeout", example: "60s",
		help:  "how long services get to start again after the copy",
		field: func(s *Settings) any { return &s.StartTimeout },
		parse: parseDuration(1),
	},
	{
		name: "health_timeout", example: "3m",
		help:  "how long to wait for services with a healthcheck to report healthy",
		field: func(s *Settings) any { return &s.HealthTimeout },
		parse: parseDuration(1),
	},
	{
		name: "poll_interval", example: "2s",
		help:  "how often to check container state while waiting",
		field: func(s *Settings) any { return &s.PollInterval },
		parse: parseDuration(1),
	},
	{
		name: "compression_level", example: "2",
		help:  "zstd level: 1 fastest, 2 default, 3 better, 4 best",
		field: func(s *Settings) any { return &s.CompressionLevel },
		parse: parseIntRange(1, 4, "want 1 (fastest), 2 (default), 3 (better) or 4 (best)"),
	},
	{
		name: "snapshot", example: "auto",
		help:  "staged copies volumes while stopped and compresses after restart (less downtime, needs disk); stream compresses while stopped; auto picks staged when there is room",
		field: func(s *Settings) any { return &s.Snapshot },
		parse: func(v, _ string) (any, error) {
			switch v {
			case SnapshotAuto, SnapshotStaged, SnapshotStream:
				return v, nil
			}
			return nil, errors.New("want auto, staged or stream")
		},
	},
	{
		name: "catch_up", example: "true",
		help:  "when a scheduled backup was missed (machine off), run it as soon as possible",
		field: func(s *Settings) any { return &s.CatchUp },
		parse: parseBool,
	},
	{
		name: "lock_timeout", example: "5m",
		help:  "how long to wait when another autobackup holds the project lock (0 = fail at once)",
		field: func(s *Settings) any { return &s.LockTimeout },
		parse: parseDuration(0),
	},
	{
		name: "notify", example: "ntfy://ntfy.sh/my-backups", secret: true,
		help:  "where to send notifications: shoutrrr URLs, comma-separated (smtp://, ntfy://, slack://, generic+https://…?template=json, …)",
		field: func(s *Settings) any { return &s.Notify },
		parse: parseNotify,
	},
	{
		name: "notify_on", example: NotifyOnAlways,
		help:  "failure: notify when a backup or restore fails or services are not back; always: after every run too",
		field: func(s *Settings) any { return &s.NotifyOn },
		parse: func(v, _ string) (any, error) {
			switch v := strings.ToLower(strings.TrimSpace(v)); v {
			case NotifyOnFailure, NotifyOnAlways:
				return v, nil
			}
			return nil, errors.New("want failure or always")
		},
	},
	{
		name: "notify_timeout", example: "10s",
		help:  "how long one notification, ping or metrics write may take before it is given up (and retried at the next run)",
		field: func(s *Settings) any { return &s.NotifyTimeout },
		parse: parseDuration(1),
	},
	{
		name: "ping_url", example: "https://hc-ping.com/your-check-uuid", secret: true,
		help:  "dead man's switch (healthchecks.io, Uptime Kuma push, Cronitor): pinged at the start, on success and on failure of each run",
		field: func(s *Settings) any { return &s.PingURL },
		parse: parsePingURL,
	},
	{
		name: "metrics_file", example: "/var/lib/node_exporter/textfile_collector/autobackup.prom",
		help:  "write Prometheus metrics for node_exporter's textfile collector here after every run; relative paths are relative to the project directory",
		field: func(s *Settings) any { return &s.MetricsFile },
		parse: parseMetricsFile,
	},
}

// keepRule is a keep_* count rule: unset or 0 means off.
func keepRule(name, example, help string) keySpec {
	return keySpec{
		name: name, example: example,
		help: help + " (in the host's time zone; 0 = off, the default)",
		field: func(s *Settings) any {
			switch name {
			case "keep_last":
				return &s.KeepLast
			case "keep_hourly":
				return &s.KeepHourly
			case "keep_daily":
				return &s.KeepDaily
			case "keep_weekly":
				return &s.KeepWeekly
			case "keep_monthly":
				return &s.KeepMonthly
			case "keep_yearly":
				return &s.KeepYearly
			}
			return &s.KeepTagged
		},
		parse: parseIntRange(0, 1_000_000, "want a whole number of 0 (off) or more"),
	}
}

// countRules are the keys whose setting turns the default retention_days
// off: with them, age is no longer the rule unless the user asks for it.
var countRules = []string{"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"}

func defaultSettings() Settings {
	return Settings{
		Enabled:          ptr(false),
		Schedule:         ptr("0 2 * * *"),
		RetentionDays:    ptr(7),
		KeepMin:          ptr(3),
		KeepLast:         ptr(0),
		KeepHourly:       ptr(0),
		KeepDaily:        ptr(0),
		KeepWeekly:       ptr(0),
		KeepMonthly:      ptr(0),
		KeepYearly:       ptr(0),
		KeepTagged:       ptr(0),
		PruneGuard:       ptr(0.5),
		Directory:        ptr("./backups"),
		StopTimeout:      ptr(Duration(compose.DefaultTimeouts.Stop)),
		StartTimeout:     ptr(Duration(compose.DefaultTimeouts.Start)),
		HealthTimeout:    ptr(Duration(compose.DefaultTimeouts.Health)),
		PollInterval:     ptr(Duration(compose.DefaultTimeouts.Poll)),
		CompressionLevel: ptr(2),
		Snapshot:         ptr(SnapshotAuto),
		CatchUp:          ptr(false),
		LockTimeout:      ptr(Duration(0)),
		Notify:           ptr([]string{}),
		NotifyOn:         ptr(NotifyOnFailure),
		NotifyTimeout:    ptr(Duration(10 * time.Second)),
		PingURL:          ptr(""),
		MetricsFile:      ptr(""),
	}
}

func ptr[T any](v T) *T { return &v }

// Keys returns every setting name in documented order.
func Keys() []string {
	keys := make([]string, len(specs))
	for i, sp := range specs {
		keys[i] = sp.name
	}
	return keys
}

// Defaults returns the built-in configuration.
func Defaults() Resolved { return Settings{}.Resolve(Settings{}) }

// layerDefaults returns the defaults under the given layers: retention_days
// is 7 only while no layer sets a keep_* count rule above 0.
func layerDefaults(layers ...Settings) Settings {
	d := defaultSettings()
	for _, name := range countRules {
		sp, _ := lookup(name)
		for i := range layers {
			if v, ok := sp.get(&layers[i]); ok {
				if v.(int) > 0 {
					d.RetentionDays = ptr(0)
				}
				break
			}
		}
	}
	return d
}

// Resolve applies the layers: a key set in s (autobackup.toml) wins over the
// same key in composeLayer (x-autobackup), which wins over the default.
func (s Settings) Resolve(composeLayer Settings) Resolved {
	m := merge(s, composeLayer, layerDefaults(s, composeLayer))
	return Resolved{
		Enabled:          *m.Enabled,
		Schedule:         *m.Schedule,
		RetentionDays:    *m.RetentionDays,
		KeepMin:          *m.KeepMin,
		KeepLast:         *m.KeepLast,
		KeepHourly:       *m.KeepHourly,
		KeepDaily:        *m.KeepDaily,
		KeepWeekly:       *m.KeepWeekly,
		KeepMonthly:      *m.KeepMonthly,
		KeepYearly:       *m.KeepYearly,
		KeepTagged:       *m.KeepTagged,
		PruneGuard:       *m.PruneGuard,
		Directory:        *m.Directory,
		StopTimeout:      time.Duration(*m.StopTimeout),
		StartTimeout:     time.Duration(*m.StartTimeout),
		HealthTimeout:    time.Duration(*m.HealthTimeout),
		PollInterval:     time.Duration(*m.PollInterval),
		LockTimeout:      time.Duration(*m.LockTimeout),
		CompressionLevel: *m.CompressionLevel,
		Snapshot:         *m.Snapshot,
		CatchUp:          *m.CatchUp,
		Notify:           *m.Notify,
		NotifyOn:         *m.NotifyOn,
		NotifyTimeout:    time.Duration(*m.NotifyTimeout),
		PingURL:          *m.PingURL,
		MetricsFile:      *m.MetricsFile,
	}
}

// merge returns, per key, the value of the first layer that sets it.
func merge(layers ...Settings) Settings {
	var out Settings
	for _, sp := range specs {
		for i := range layers {
			if v, ok := sp.get(&layers[i]); ok {
				sp.assign(&out, v)
				break
			}
		}
	}
	return out
}

// Describe returns every setting in documented order with its effective
// value and where that value comes from (see Resolve for precedence).
func (s Settings) Describe(composeLayer Settings) []Setting {
	defaults := layerDefaults(s, composeLayer)
	out := make([]Setting, 0, len(specs))
	for _, sp := range specs {
		v, source := any(nil), ""
		if x, ok := sp.get(&s); ok {
			v, source = x, SourceFile
		} else if x, ok := sp.get(&composeLayer); ok {
			v, source = x, SourceCompose
		} else {
			v, _ = sp.get(&defaults)
			source = SourceDefault
		}
		out = append(out, Setting{Key: sp.name, Value: formatValue(v), Source: source, Help: sp.help, Example: sp.example})
	}
	return out
}

// Set validates value for key and stores it. On error s is unchanged; the
// error says what is wrong and shows a valid example. A relative directory
// is checked against projectDir but stored as given.
func (s *Settings) Set(key, value, projectDir string) error {
	sp, err := lookup(key)
	if err != nil {
		return err
	}
	v, err := sp.parse(value, projectDir)
	if err != nil {
		return fmt.Errorf("%s %q: %v; example: docker autobackup config set %s %s", sp.name, sp.redact(value), err, sp.name, text.ShellQuote(sp.example))
	}
	sp.assign(s, v)
	return nil
}

// Unset removes key, so that the compose file's value or the default
// applies again. Unsetting a key that is not set is not an error.
func (s *Settings) Unset(key string) error {
	sp, err := lookup(key)
	if err != nil {
		return err
	}
	sp.clear(s)
	return nil
}

// scalarText formats a value decoded from YAML or JSON as the text Set
// takes: strings, booleans, whole numbers, a decimal where the key takes a
// fraction, and a list where it takes one.
func scalarText(v any, fraction, list bool) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case []any:
		if !list {
			return "", errors.New("want a string, boolean or number, got a list")
		}
		parts := make([]string, 0, len(v))
		for _, x := range v {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, ","), nil
	case float64:
		if !fraction && (v != math.Trunc(v) || math.IsInf(v, 0)) {
			return "", fmt.Errorf("%v: want a whole number", v)
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("want a string, boolean or number, got %T", v)
}

// SettingsFromMap builds a settings layer from decoded YAML or JSON, such as
// the x-autobackup extension of a compose file. Values may be strings,
// booleans or numbers; each is validated as Set validates it.
func SettingsFromMap(m map[string]any, projectDir string) (Settings, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s Settings
	var errs []error
	for _, k := range keys {
		fraction, list := false, false
		if sp, err := lookup(k); err == nil {
			_, fraction = sp.field(&s).(**float64)
			list = sp.isList()
		}
		str, err := scalarText(m[k], fraction, list)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		if err := s.Set(k, str, projectDir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Settings{}, errors.Join(errs...)
	}
	return s, nil
}

// validate checks the values already in s, as read from a file. It does
// not look at the file system.
func (s *Settings) validate() []valueError {
	var errs []valueError
	for _, sp := range specs {
		v, ok := sp.get(s)
		if !ok {
			continue
		}
		if _, err := sp.parse(formatValue(v), ""); err != nil {
			errs = append(errs, valueError{
				key: []string{"settings", sp.name},
				msg: fmt.Sprintf("%s = %s: %v; example: %s = %s", sp.name, sp.redactIn(formatValue(v), tomlLiteral(v)), err, sp.name, sp.exampleLiteral()),
			})
		}
	}
	return errs
}

// valueError is an invalid value found in a decoded file.
type valueError struct {
	key   []string
	index int // which [[table]] the key is in; -1 when not in an array of tables
	msg   string
}

// NormalizeKey spells a setting's name the way this package does: lower
// case, "_" for "-", no surrounding space (the user may type
// Retention-Days). The one rule for every lookup of a setting.
func NormalizeKey(key string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "-", "_")
}

func lookup(key string) (keySpec, error) {
	norm := NormalizeKey(key)
	for _, sp := range specs {
		if sp.name == norm {
			return sp, nil
		}
	}
	return keySpec{}, fmt.Errorf("unknown setting %q; valid settings: %s", key, strings.Join(Keys(), ", "))
}

func (sp keySpec) get(s *Settings) (any, bool) { return getAny(sp.field(s)) }

func (sp keySpec) assign(s *Settings, v any) { assignAny(sp.field(s), v) }

func (sp keySpec) clear(s *Settings) { clearAny(sp.field(s)) }

// getAny, assignAny and clearAny read, set and unset a setting through the
// pointer to its field, for every type a setting has ([settings] and
// [remote] alike).
func getAny(p any) (any, bool) {
	switch p := p.(type) {
	case **bool:
		if *p != nil {
			return **p, true
		}
	case **string:
		if *p != nil {
			return **p, true
		}
	case **int:
		if *p != nil {
			return **p, true
		}
	case **Duration:
		if *p != nil {
			return **p, true
		}
	case **float64:
		if *p != nil {
			return **p, true
		}
	case **[]string:
		if *p != nil {
			return slices.Clone(**p), true
		}
	}
	return nil, false
}

func assignAny(p any, v any) {
	switch p := p.(type) {
	case **bool:
		*p = ptr(v.(bool))
	case **string:
		*p = ptr(v.(string))
	case **int:
		*p = ptr(v.(int))
	case **Duration:
		*p = ptr(v.(Duration))
	case **float64:
		*p = ptr(v.(float64))
	case **[]string:
		*p = ptr(slices.Clone(v.([]string)))
	}
}

func clearAny(p any) {
	switch p := p.(type) {
	case **bool:
		*p = nil
	case **string:
		*p = nil
	case **int:
		*p = nil
	case **Duration:
		*p = nil
	case **float64:
		*p = nil
	case **[]string:
		*p = nil
	}
}

func (sp keySpec) exampleLiteral() string {
	v, err := sp.parse(sp.example, "")
	if err != nil {
		return sp.example
	}
	return tomlLiteral(v)
}

// formatValue renders a typed value as Set accepts it.
func formatValue(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	case Duration:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []string:
		return strings.Join(v, ",")
	}
	return fmt.Sprint(v)
}

// tomlLiteral renders a typed value as it appears in autobackup.toml.
func tomlLiteral(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case Duration:
		return strconv.Quote(v.String())
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return formatValue(v)
}

func parseBool(v, _ string) (any, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return nil, errors.New("want true or false")
}

// parseFraction accepts a number from 0 to 1, such as 0.5.
func parseFraction(v, _ string) (any, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return nil, errors.New("want a fraction from 0 (off) to 1, like 0.5")
	}
	return f, nil
}

func parseIntRange(lo, hi int, want string) func(string, string) (any, error) {
	return func(v, _ string) (any, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return nil, errors.New(want)
		}
		return n, nil
	}
}

// parseDuration accepts durations of at least min (0 or 1 nanosecond:
// "not negative" or "positive").
func parseDuration(min time.Duration) func(string, string) (any, error) {
	return func(v, _ string) (any, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, errors.New(durationWant)
		}
		if d < min {
			if min > 0 {
				return nil, errors.New("want a duration greater than 0, like 30s, 5m or 1h30m")
			}
			return nil, errors.New("want a duration of 0 or more, like 0s, 30s or 5m")
		}
		return Duration(d), nil
	}
}

func parseDirectory(v, projectDir string) (any, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("want a directory path")
	}
	if strings.ContainsAny(v, "\x00\n\r") {
		return nil, errors.New("want a path without control characters")
	}
	if projectDir == "" && !filepath.IsAbs(v) {
		return v, nil
	}
	fi, err := os.Stat(resolveDir(v, projectDir))
	if err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%s exists and is not a directory", resolveDir(v, projectDir))
	}
	return v, nil
}

func resolveDir(dir, projectDir string) string {
	if filepath.IsAbs(dir) {
		return filepath.Clean(dir)
	}
	return filepath.Join(projectDir, dir)
}

// redact masks the credentials in a value of a secret key.
func (sp keySpec) redact(v string) string { return sp.redactIn(v, v) }

// redactIn masks the credentials of value v (as Set takes it) in text.
func (sp keySpec) redactIn(v, text string) string {
	if !sp.secret {
		return text
	}
	return notify.NewRedactor(SplitURLs(v)...).Scrub(text)
}

func (sp keySpec) isList() bool {
	_, ok := sp.field(&Settings{}).(**[]string)
	return ok
}

// IsSecret reports whether key's values hold credentials, to be shown
// redacted (see notify.Redact).
func IsSecret(key string) bool {
	sp, err := lookup(key)
	return err == nil && sp.secret
}

// urlStart matches the start of a URL: a scheme and "://".
var urlStart = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// SplitURLs splits a comma-separated list of URLs. A comma starts a new URL
// only when a scheme follows it, so commas inside a URL (a list of e-mail
// recipients, to=a@x,b@y) stay where they are.
func SplitURLs(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		p := strings.TrimSpace(part)
		if len(out) > 0 && !urlStart.MatchString(p) {
			out[len(out)-1] += "," + part
			continue
		}
		out = append(out, p)
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	if len(out) == 1 && out[0] == "" {
		return []string{}
	}
	return out
}

func parseNotify(v, _ string) (any, error) {
	urls := SplitURLs(v)
	for i, u := range urls {
		if err := notify.Validate(u); err != nil {
			return nil, fmt.Errorf("URL %d: %v; want shoutrrr URLs such as smtp://user:pass@host:587/?from=a@b&to=c@d, ntfy://ntfy.sh/topic or generic+https://host/path?template=json", i+1, err)
		}
	}
	return urls, nil
}

func parsePingURL(v, _ string) (any, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return v, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an http or https URL, like https://hc-ping.com/UUID")
	}
	return v, nil
}

func parseMetricsFile(v, projectDir string) (any, error) {
	if v == "" {
		return v, nil
	}
	if strings.ContainsAny(v, "\x00\n\r") {
		return nil, errors.New("want a path without control characters")
	}
	if strings.HasSuffix(v, "/") {
		return nil, errors.New("want a file path, like /var/lib/node_exporter/textfile_collector/autobackup.prom")
	}
	if projectDir == "" && !filepath.IsAbs(v) {
		return v, nil
	}
	if fi, err := os.Stat(resolveDir(v, projectDir)); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory; want a file in it, like %s", resolveDir(v, projectDir), filepath.Join(resolveDir(v, projectDir), "autobackup.prom"))
	}
	return v, nil
}
