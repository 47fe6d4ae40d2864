package state

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// RemotePrefix starts the keys of the [remote] table on the command line:
// config set remote.url s3://bucket/prefix.
const RemotePrefix = "remote."

// Upload statuses of a backup record (Backup.Remote).
const (
	UploadDone   = "uploaded"
	UploadFailed = "failed" // the backup is local only; push uploads it
)

// Remote is the [remote] table of autobackup.toml, or remote: under
// x-autobackup in the compose file: where off-site copies go. It holds no
// secret; credentials come from the environment, the shared AWS
// credentials file, or the files named here. nil fields are unset.
type Remote struct {
	URL              *string `toml:"url,omitempty"`
	Endpoint         *string `toml:"endpoint,omitempty"`
	Region           *string `toml:"region,omitempty"`
	PathStyle        *bool   `toml:"path_style,omitempty"`
	AccessKeyFile    *string `toml:"access_key_file,omitempty"`
	SecretKeyFile    *string `toml:"secret_key_file,omitempty"`
	SessionTokenFile *string `toml:"session_token_file,omitempty"`
	Host             *string `toml:"host,omitempty"`
	EncryptTo        *string `toml:"encrypt_to,omitempty"`
	IdentityFile     *string `toml:"identity_file,omitempty"`
	RetentionDays    *int    `toml:"retention_days,omitempty"`
	KeepMin          *int    `toml:"keep_min,omitempty"`
}

// RemoteResolved is the effective remote configuration. URL is empty when
// no remote is configured.
type RemoteResolved struct {
	URL, Endpoint, Region                          string
	PathStyle                                      bool
	AccessKeyFile, SecretKeyFile, SessionTokenFile string
	Host                                           string
	EncryptTo                                      string // comma-separated recipients or recipients files
	IdentityFile                                   string
	RetentionDays, KeepMin                         int // 0: as [settings]
}

type remoteSpec struct {
	name, help, example string
	field               func(r *Remote) any
	parse               func(string) (any, error)
}

func parseString(want string, check func(string) error) func(string) (any, error) {
	return func(v string) (any, error) {
		if strings.ContainsAny(v, "\x00\n\r") {
			return nil, errors.New("want a value without control characters")
		}
		if check != nil {
			if err := check(v); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
}

// redact hides the user info of a URL-like value: it may be a secret.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return v
}

func noUserinfo(kind string) func(string) error {
	return func(v string) error {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			return fmt.Errorf("credentials do not belong in the %s: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or remote.access_key_file", kind)
		}
		return nil
	}
}

var remoteSpecs = []remoteSpec{
	{name: "url", example: "s3://my-bucket/backups",
		help:  "where off-site copies go: s3://bucket or s3://bucket/prefix (empty: none)",
		field: func(r *Remote) any { return &r.URL },
		parse: parseString("", func(v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "s3" || u.Host == "" {
				return errors.New("want s3://bucket or s3://bucket/prefix")
			}
			return noUserinfo("url")(v)
		})},
	{name: "endpoint", example: "http://127.0.0.1:7070",
		help:  "the S3 server for non-AWS storage, http(s)://host[:port] (empty: AWS)",
		field: func(r *Remote) any { return &r.Endpoint },
		parse: parseString("", func(v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want http://host:port or https://host")
			}
			return noUserinfo("endpoint")(v)
		})},
	{name: "region", example: "eu-central-1", help: "the bucket's region (empty: us-east-1 or what the server says)",
		field: func(r *Remote) any { return &r.Region }, parse: parseString("", nil)},
	{name: "path_style", example: "true", help: "address the bucket as endpoint/bucket instead of bucket.endpoint (most non-AWS servers)",
		field: func(r *Remote) any { return &r.PathStyle }, parse: func(v string) (any, error) { return parseBool(v, "") }},
	{name: "access_key_file", example: "/run/secrets/s3-key-id", help: "file holding the access key id (default: AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials)",
		field: func(r *Remote) any { return &r.AccessKeyFile }, parse: parseString("", nil)},
	{name: "secret_key_file", example: "/run/secrets/s3-secret", help: "file holding the secret access key (with access_key_file)",
		field: func(r *Remote) any { return &r.SecretKeyFile }, parse: parseString("", nil)},
	{name: "session_token_file", example: "/run/secrets/s3-token", help: "file holding a session token (optional)",
		field: func(r *Remote) any { return &r.SessionTokenFile }, parse: parseString("", nil)},
	{name: "host", example: "web1", help: "set on each host when two hosts back up projects of the same name into one bucket",
		field: func(r *Remote) any { return &r.Host }, parse: parseString("", func(v string) error {
			if strings.ContainsAny(v, "/@\\ ") {
				return errors.New("want a name without /, @, \\ or spaces")
			}
			return nil
		})},
	{name: "encrypt_to", example: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
		help:  "encrypt uploads with age to these recipients, comma-separated: age1… keys, ssh-ed25519/ssh-rsa keys or recipients files",
		field: func(r *Remote) any { return &r.EncryptTo }, parse: parseString("", nil)},
	{name: "identity_file", example: "/root/.config/autobackup/key.txt",
		help:  "age identity (or ssh private key) to decrypt for restore and verify (also --identity, AUTOBACKUP_IDENTITY_FILE)",
		field: func(r *Remote) any { return &r.IdentityFile }, parse: parseString("", nil)},
	{name: "retention_days", example: "30", help: "delete remote backups older than this many days (default: as [settings])",
		field: func(r *Remote) any { return &r.RetentionDays },
		parse: func(v string) (any, error) {
			return parseIntRange(1, 36500, "want a whole number of days from 1 to 36500")(v, "")
		}},
	{name: "keep_min", example: "3", help: "always keep at least this many remote backups (default: as [settings])",
		field: func(r *Remote) any { return &r.KeepMin },
		parse: func(v string) (any, error) {
			return parseIntRange(1, 1_000_000, "want a whole number of at least 1")(v, "")
		}},
}

// RemoteKeys returns the remote keys as typed on the command line
// (remote.url, …), in documented order.
func RemoteKeys() []string {
	out := make([]string, len(remoteSpecs))
	for i, sp := range remoteSpecs {
		out[i] = RemotePrefix + sp.name
	}
	return out
}

func lookupRemote(key string) (remoteSpec, error) {
	norm := strings.TrimPrefix(NormalizeKey(key), RemotePrefix)
	for _, sp := range remoteSpecs {
		if sp.name == norm {
			return sp, nil
		}
	}
	return remoteSpec{}, fmt.Errorf("unknown setting %q; valid remote settings: %s", key, strings.Join(RemoteKeys(), ", "))
}

// Set validates value for key (with or without the remote. prefix) and
// stores it. On error r is unchanged.
func (r *Remote) Set(key, value string) error {
	sp, err := lookupRemote(key)
	if err != nil {
		return err
	}
	v, err := sp.parse(value)
	if err != nil {
		return fmt.Errorf("%s%s %q: %v; example: docker autobackup config set %s%s %s", RemotePrefix, sp.name, redact(value), err, RemotePrefix, sp.name, text.ShellQuote(sp.example))
	}
	assignAny(sp.field(r), v)
	return nil
}

// Unset removes key.
func (r *Remote) Unset(key string) error {
	sp, err := lookupRemote(key)
	if err != nil {
		return err
	}
	clearAny(sp.field(r))
	return nil
}

// Resolve applies the layers: r (autobackup.toml) over composeLayer.
func (r Remote) Resolve(composeLayer Remote) RemoteResolved {
	get := func(sp remoteSpec) (any, bool) {
		if v, ok := getAny(sp.field(&r)); ok {
			return v, true
		}
		return getAny(sp.field(&composeLayer))
	}
	var out RemoteResolved
	dst := map[string]any{
		"url": &out.URL, "endpoint": &out.Endpoint, "region": &out.Region, "path_style": &out.PathStyle,
		"access_key_file": &out.AccessKeyFile, "secret_key_file": &out.SecretKeyFile, "session_token_file": &out.SessionTokenFile,
		"host": &out.Host, "encrypt_to": &out.EncryptTo, "identity_file": &out.IdentityFile,
		"retention_days": &out.RetentionDays, "keep_min": &out.KeepMin,
	}
	for _, sp := range remoteSpecs {
		v, ok := get(sp)
		if !ok {
			continue
		}
		switch p := dst[sp.name].(type) {
		case *string:
			*p = v.(string)
		case *bool:
			*p = v.(bool)
		case *int:
			*p = v.(int)
		}
	}
	return out
}

// Describe returns every remote key with its effective value and source.
func (r Remote) Describe(composeLayer Remote) []Setting {
	out := make([]Setting, 0, len(remoteSpecs))
	for _, sp := range remoteSpecs {
		s := Setting{Key: RemotePrefix + sp.name, Source: SourceDefault, Help: sp.help, Example: sp.example}
		if v, ok := getAny(sp.field(&r)); ok {
			s.Value, s.Source = formatValue(v), SourceFile
		} else if v, ok := getAny(sp.field(&composeLayer)); ok {
			s.Value, s.Source = formatValue(v), SourceCompose
		}
		out = append(out, s)
	}
	return out
}

// RemoteFromMap builds a remote layer from decoded YAML (remote: under
// x-autobackup), each value validated as Set validates it.
func RemoteFromMap(raw any) (Remote, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return Remote{}, errors.New("remote must be a mapping, e.g. {url: s3://bucket/prefix}")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var r Remote
	var errs []error
	for _, k := range keys {
		str, err := scalarText(m[k], false, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("remote.%s: %w", k, err))
			continue
		}
		if err := r.Set(k, str); err != nil {
			errs = append(errs, err)
		}
	}
	return r, errors.Join(errs...)
}

func (r *Remote) validate() []valueError {
	var errs []valueError
	for _, sp := range remoteSpecs {
		v, ok := getAny(sp.field(r))
		if !ok {
			continue
		}
		if _, err := sp.parse(formatValue(v)); err != nil {
			errs = append(errs, valueError{key: []string{"remote", sp.name}, index: -1,
				msg: fmt.Sprintf("%s = %s: %v; example: %s = %s", sp.name, tomlLiteral(redactAny(v)), err, sp.name, tomlLiteral(mustParse(sp)))})
		}
	}
	return errs
}

func redactAny(v any) any {
	if s, ok := v.(string); ok {
		return redact(s)
	}
	return v
}

func mustParse(sp remoteSpec) any {
	v, err := sp.parse(sp.example)
	if err != nil {
		return sp.example
	}
	return v
}

// RecordUpload sets the upload status of backup id's newest record.
func (f *File) RecordUpload(id, status, errMsg string) {
	if b, ok := f.FindBackup(id); ok {
		b.Remote, b.RemoteError = status, errMsg
		if status == UploadDone {
			b.RemoteError = ""
		}
	}
}
