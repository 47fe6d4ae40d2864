package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/gofrs/flock"

	"github.com/docker-autobackup/docker-autobackup/internal/atomicfile"
)

// A project keeps two files side by side:
//
//   - autobackup.toml (FileName): the user's settings, [settings] and the
//     other setting tables. The tool writes it only for config set/unset,
//     enable and disable, editing just the keys that change (see edit.go).
//   - autobackup.history.toml (HistoryName): what happened, [state],
//     [[backups]], [[restores]] and [[prunes]], written by the tool after
//     every run, restore and prune.
//
// Older versions kept the history in autobackup.toml. Load still reads it
// from there; the first Update that records something moves it into the
// history file and removes it from autobackup.toml, keeping the rest of
// that file's text as it was.

// HistoryName is the name of the history file, beside FileName.
const HistoryName = "autobackup.history.toml"

// stateLockName serialises every read-modify-write of the two files.
// Unlike the project lock (held for a whole backup) it is held only for
// the milliseconds an Update takes, so `config set` during a backup waits
// for neither, and neither loses the other's write.
const stateLockName = ".autobackup.state.lock"

// historyTables are the tables of the history file, as scanLines names
// them.
var historyTables = []string{"state", "[[backups]]", "[[restores]]", "[[prunes]]"}

// HistoryPath returns the history file that goes with the settings file
// path.
func HistoryPath(path string) string { return filepath.Join(filepath.Dir(path), HistoryName) }

// Load reads the settings file at path and the history file beside it
// into one *File. Missing files are empty. A file that is not valid TOML,
// has keys this version does not know, or has invalid values is a
// *ParseError.
func Load(path string) (*File, error) {
	f, _, _, err := load(path)
	return f, err
}

// load returns the merged file, the settings file's text, and whether that
// text still holds history of an older version.
func load(path string) (f *File, settingsText []byte, legacy bool, err error) {
	f, settingsText, err = readFile(path)
	if err != nil {
		return nil, nil, false, err
	}
	legacy = hasHistory(f)
	h, histText, err := readFile(HistoryPath(path))
	if err != nil {
		return nil, nil, false, err
	}
	if histText != nil {
		if !reflect.DeepEqual(h.settings(), &File{}) {
			return nil, nil, false, &ParseError{Path: HistoryPath(path), Msg: "holds settings; they belong in " + FileName}
		}
		// The history file wins: an interrupted move leaves the history in
		// both, and the history file has the newer records.
		user := f.settings()
		*f = *h
		f.Settings, f.Remote = user.Settings, user.Remote
	}
	return f, settingsText, legacy, nil
}

func hasHistory(f *File) bool {
	return !reflect.DeepEqual(f.history(), &File{})
}

// Update loads both files, lets fn change the result, and writes back
// what changed: the history file when the history changed, the settings
// file, edited in place, when a setting changed. It holds the state lock
// meanwhile, so concurrent Updates of one project (a run recording itself,
// a config set) never lose each other's change. A file that does not load
// is returned as its error and left untouched; when fn fails nothing is
// written.
func Update(path string, fn func(f *File) error) error {
	unlock, err := lockState(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer unlock()
	f, text, legacy, err := load(path)
	if err != nil {
		return err
	}
	before := f.clone()
	if err := fn(f); err != nil {
		return err
	}
	historyChanged := !reflect.DeepEqual(before.history(), f.history())
	if historyChanged || legacy {
		if err := saveHistory(HistoryPath(path), f); err != nil {
			return err
		}
		if legacy {
			text = stripTables(text, historyTables)
		}
	}
	if !reflect.DeepEqual(before.settings(), f.settings()) || legacy {
		if err := saveSettings(path, text, before, f); err != nil {
			return err
		}
	}
	return nil
}

// Save writes f as the two files, from scratch: the settings file loses
// any comments. Update is what commands use.
func Save(path string, f *File) error {
	if err := saveHistory(HistoryPath(path), f); err != nil {
		return err
	}
	return saveSettings(path, nil, &File{}, f)
}

func (f *File) clone() *File {
	c := *f
	c.Backups = slices.Clone(f.Backups)
	c.Restores = slices.Clone(f.Restores)
	c.Prunes = slices.Clone(f.Prunes)
	return &c
}

// settings is the part of f that lives in the settings file: the tables
// the user writes. Everything else is history.
func (f *File) settings() *File {
	return &File{Settings: f.Settings, Remote: f.Remote}
}

// settingTables names the tables of settings(), with their values, in
// the order a new file gets them.
func (f *File) settingTables() []struct {
	name  string
	value any
} {
	return []struct {
		name  string
		value any
	}{{"settings", f.Settings}, {"remote", f.Remote}}
}

// history is f without its settings.
func (f *File) history() *File {
	h := *f
	h.Settings, h.Remote = Settings{}, Remote{}
	return &h
}

const fileHeader = `# docker autobackup: settings of this Compose project.
# Change them with "docker autobackup config set KEY VALUE" or edit [settings]
# by hand; keys that are not listed use their defaults ("docker autobackup config").
# What happened (backups, restores, prunes) is in autobackup.history.toml.

`

const historyHeader = `# docker autobackup: what happened to this Compose project (backups, restores,
# prunes). Written by the tool after every run; your settings are in autobackup.toml.

`

func saveHistory(path string, f *File) error {
	h := f.history().normalized()
	if errs := h.validate(); len(errs) > 0 {
		return fmt.Errorf("save %s: %s", path, errs[0].msg)
	}
	data, err := h.marshalWith(historyHeader)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// saveSettings writes the settings of f into the settings file whose
// current text is text (nil: none yet), changing only the keys that differ
// from before. Should the edited text not read back as exactly f's
// settings (a layout the editor does not understand), the file is written
// from scratch instead: correct settings come before kept comments.
func saveSettings(path string, text []byte, before, f *File) error {
	user := f.settings()
	if errs := user.validate(); len(errs) > 0 {
		return fmt.Errorf("save %s: %s", path, errs[0].msg)
	}
	var data []byte
	if text != nil {
		data = bytes.Clone(text)
		old, cur := before.settingTables(), f.settingTables()
		for i := range cur {
			have, err := tableValues(old[i].value)
			if err != nil {
				return fmt.Errorf("save %s: %w", path, err)
			}
			want, err := tableValues(cur[i].value)
			if err != nil {
				return fmt.Errorf("save %s: %w", path, err)
			}
			data = editTable(data, cur[i].name, have, want)
		}
		if got, err := parse(path, data); err != nil || !reflect.DeepEqual(got.settings(), user) || hasHistory(got) {
			data = nil
		}
	}
	if data == nil {
		var err error
		data, err = user.marshalWith(fileHeader)
		if err != nil {
			return fmt.Errorf("save %s: %w", path, err)
		}
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// stateLockWait bounds how long Update waits for another Update of the
// same project, which takes milliseconds; longer means a stuck process.
const stateLockWait = 30 * time.Second

func lockState(dir string) (func(), error) {
	fl := flock.New(filepath.Join(dir, stateLockName), flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	deadline := time.Now().Add(stateLockWait)
	for {
		ok, err := fl.TryLock()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
				return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
			}
			// No flock on this file system: go on unserialised, as
			// before there was a lock.
			return func() {}, nil
		}
		if ok {
			return func() { _ = fl.Unlock() }, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("another docker autobackup has been writing %s for %s; if none runs, remove %s", filepath.Join(dir, FileName), stateLockWait, fl.Path())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
