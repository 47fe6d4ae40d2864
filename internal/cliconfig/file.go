package cliconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// FileName is the name of the docker CLI configuration file.
const FileName = "config.json"

// ParseError reports a config.json that is not a JSON object we can edit.
// The file is left as it is.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: %v; fix the file by hand (it was not changed)", e.Path, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// newFileMode is the mode of a config.json we create: it can hold
// credentials, so only its owner may read it (as the docker CLI does).
const newFileMode = 0o600

// Read parses the config file at path. A missing file is an empty object.
func Read(path string) (*Object, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ParseObject(nil)
	}
	if err != nil {
		return nil, err
	}
	o, err := ParseObject(data)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	return o, nil
}

// Edit reads the config file at path (a missing file is an empty object),
// lets fn change it, and writes it back atomically when the content
// changed; it reports whether it wrote. A file that does not parse, or an
// error from fn, leaves the file untouched. The directory is created (0700)
// when missing. Edit does not lock: the docker CLI does not either, and a
// concurrent writer loses to the last rename, never to a torn file.
func Edit(path string, fn func(*Object) error) (changed bool, err error) {
	// Like the docker CLI, edit the target of a symlinked config.json
	// (dotfile managers) instead of replacing the link with a file.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	o, err := ParseObject(old)
	if err != nil {
		return false, &ParseError{Path: path, Err: err}
	}
	before, err := encode(o)
	if err != nil {
		return false, &ParseError{Path: path, Err: err}
	}
	if err := fn(o); err != nil {
		return false, err
	}
	data, err := encode(o)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", path, err)
	}
	if bytes.Equal(before, data) {
		return false, nil // nothing to do: leave the file (or its absence) alone
	}
	data = append(data, '\n')

	mode := os.FileMode(newFileMode)
	var owner *syscall.Stat_t
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		owner, _ = fi.Sys().(*syscall.Stat_t)
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	err = atomicfile.Write(path, mode, func(w io.Writer) error {
		// The temporary file was created with mode & ~umask; give it the
		// old file's exact mode and owner before it replaces the file.
		if f, ok := w.(*os.File); ok {
			if err := f.Chmod(mode); err != nil {
				return err
			}
			if owner != nil && int(owner.Uid) != os.Geteuid() {
				_ = f.Chown(int(owner.Uid), int(owner.Gid)) // only root may; otherwise the file stays ours
			}
		}
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// encode writes o the way the docker CLI writes config.json: tab-indented.
func encode(o *Object) ([]byte, error) {
	compact, err := o.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, compact, "", "\t"); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
