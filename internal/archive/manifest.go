package archive

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// ManifestName is the file name of the manifest inside a backup directory.
const ManifestName = "manifest.json"

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// Snapshot modes: the values of the snapshot setting, of which a backup
// records the one it used (stream or staged) in Manifest.Mode. The one
// source for them (the settings and the backup package name them after
// these).
const (
	ModeStream = "stream" // volumes were archived straight from the engine while services were stopped
	ModeStaged = "staged" // volumes were copied first, then archived after services restarted
	ModeAuto   = "auto"   // the setting only: staged when possible, else stream
)

// maxManifestSize bounds how much of a manifest file is read; a real one is
// a few kilobytes, and the file is untrusted input.
const maxManifestSize = 16 << 20

// Manifest describes one complete backup. It is stored as manifest.json.
type Manifest struct {
	FormatVersion   int       `json:"format_version"`
	ID              string    `json:"id"`
	Project         string    `json:"project"`
	ProjectDir      string    `json:"project_dir"`
	Host            string    `json:"host,omitempty"` // the host the backup was taken on (see Hostname)
	Tag             string    `json:"tag,omitempty"`
	ToolVersion     string    `json:"tool_version"`
	Mode            string    `json:"mode"`
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	DowntimeSeconds float64   `json:"downtime_seconds"`
	Volumes         []Volume  `json:"volumes"`
	Services        []Service `json:"services"`
}

// Volume describes one backed-up volume and its archive file.
type Volume struct {
	Name       string            `json:"name"` // engine name, e.g. shop_dbdata
	Key        string            `json:"key"`  // compose key, e.g. dbdata
	External   bool              `json:"external"`
	Driver     string            `json:"driver"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`

	Archive      string `json:"archive"`       // plain file name inside the backup directory
	ArchiveBytes int64  `json:"archive_bytes"` // size of the .tar.zst file
	TarBytes     int64  `json:"tar_bytes"`     // size of the uncompressed tar stream
	SHA256       string `json:"sha256"`        // lowercase hex of the .tar.zst file
}

// Service records the image a service ran when the backup was taken.
type Service struct {
	Name        string   `json:"name"`
	Image       string   `json:"image"`
	ImageID     string   `json:"image_id"`
	RepoDigests []string `json:"repo_digests,omitempty"`
	// DowntimeSeconds is how long the service was down for the backup:
	// its first container stopped → running and healthy again. 0 for a
	// service that was not stopped.
	DowntimeSeconds float64 `json:"downtime_seconds,omitempty"`
}

// idLayout is the time part of a backup ID. It sorts lexically in time order.
const idLayout = "20060102-150405"

// NewID returns a new backup ID for t: its UTC time to the second and four
// random hex digits, e.g. "20261125-231500-a1b2". IDs sort by time.
func NewID(t time.Time) string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return t.UTC().Format(idLayout) + "-" + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID produces. Only valid IDs
// are used as directory names, so an ID never contains a path separator.
func ValidID(id string) bool {
	_, ok := idTime(id)
	return ok
}

// idTime parses the time part of a backup ID.
func idTime(id string) (time.Time, bool) {
	if len(id) != len(idLayout)+5 || id[len(idLayout)] != '-' {
		return time.Time{}, false
	}
	for _, c := range id[len(idLayout)+1:] {
		if !isLowerHex(c) {
			return time.Time{}, false
		}
	}
	for _, c := range id[:len(idLayout)] {
		if c != '-' && (c < '0' || c > '9') {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(idLayout, id[:len(idLayout)])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

func isLowerHex(c rune) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
}

// ReadManifest reads and validates the manifest file at path. See
// ParseManifest for what is checked.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s: larger than %d bytes", path, maxManifestSize)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// ParseManifest decodes and validates a manifest. It is strict, because a
// manifest read back from disk is untrusted: unknown fields and trailing data
// are rejected, format_version must be FormatVersion, the ID must be valid,
// every archive must be a plain file name and every checksum 64 lowercase hex
// digits, and volume names, keys and archives must be unique. Errors name the
// offending field.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode: unexpected data after the manifest object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest as ParseManifest does. Commit calls it so a
// backup is never written with a manifest that could not be read back.
func (m *Manifest) Validate() error {
	switch {
	case m.FormatVersion == 0:
		return errors.New("format_version: missing")
	case m.FormatVersion != FormatVersion:
		return fmt.Errorf("format_version: unsupported version %d (this tool reads %d)", m.FormatVersion, FormatVersion)
	case !ValidID(m.ID):
		return fmt.Errorf("id: invalid backup id %q", m.ID)
	case m.Project == "":
		return errors.New("project: missing")
	case m.Mode != ModeStream && m.Mode != ModeStaged:
		return fmt.Errorf("mode: %q is neither %q nor %q", m.Mode, ModeStream, ModeStaged)
	case math.IsNaN(m.DowntimeSeconds) || math.IsInf(m.DowntimeSeconds, 0) || m.DowntimeSeconds < 0:
		return fmt.Errorf("downtime_seconds: invalid value %v", m.DowntimeSeconds)
	}
	names := make(map[string]bool, len(m.Volumes))
	keys := make(map[string]bool, len(m.Volumes))
	archives := make(map[string]bool, len(m.Volumes))
	for i, v := range m.Volumes {
		field := func(name string) string { return fmt.Sprintf("volumes[%d].%s", i, name) }
		switch {
		case v.Name == "":
			return fmt.Errorf("%s: missing", field("name"))
		case strings.ContainsAny(v.Name, "/\x00") || hasControl(v.Name):
			return fmt.Errorf("%s: invalid volume name %q", field("name"), v.Name)
		case names[v.Name]:
			return fmt.Errorf("%s: duplicate volume %q", field("name"), v.Name)
		case v.Key != "" && keys[v.Key]:
			return fmt.Errorf("%s: duplicate key %q", field("key"), v.Key)
		case archives[v.Archive]:
			return fmt.Errorf("%s: duplicate archive %q", field("archive"), v.Archive)
		case v.ArchiveBytes < 0:
			return fmt.Errorf("%s: negative size %d", field("archive_bytes"), v.ArchiveBytes)
		case v.TarBytes < 0:
			return fmt.Errorf("%s: negative size %d", field("tar_bytes"), v.TarBytes)
		case !validSHA256(v.SHA256):
			return fmt.Errorf("%s: %q is not 64 lowercase hex digits", field("sha256"), v.SHA256)
		}
		if err := checkArchiveName(v.Archive); err != nil {
			return fmt.Errorf("%s: %w", field("archive"), err)
		}
		names[v.Name] = true
		if v.Key != "" {
			keys[v.Key] = true
		}
		archives[v.Archive] = true
	}
	services := make(map[string]bool, len(m.Services))
	for i, s := range m.Services {
		switch {
		case s.Name == "":
			return fmt.Errorf("services[%d].name: missing", i)
		case services[s.Name]:
			return fmt.Errorf("services[%d].name: duplicate service %q", i, s.Name)
		}
		services[s.Name] = true
	}
	return nil
}

// checkArchiveName accepts only a plain file name that cannot leave or hide
// in the backup directory.
func checkArchiveName(name string) error {
	switch {
	case name == "":
		return errors.New("missing")
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%q is not a plain file name", name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%q contains \"..\"", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("%q starts with \".\"", name)
	case name == ManifestName:
		return fmt.Errorf("%q is the manifest", name)
	case strings.ContainsRune(name, 0) || hasControl(name):
		return fmt.Errorf("%q contains control characters", name)
	case len(name) > 255:
		return fmt.Errorf("%q is longer than 255 bytes", name)
	}
	return nil
}

func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !isLowerHex(c) {
			return false
		}
	}
	return true
}

// marshalManifest is the on-disk encoding: indented, newline-terminated.
func marshalManifest(m *Manifest) ([]byte, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
