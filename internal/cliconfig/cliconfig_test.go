package cliconfig

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var hooked = []string{"compose up", "compose down"}

// A config.json as Docker Desktop and credential helpers leave it: keys we
// must not lose, in an order we must not change.
const busyConfig = `{
	"auths": {
		"registry.example.com": {"auth": "dXNlcjpwYXNz"}
	},
	"credsStore": "desktop",
	"currentContext": "colima",
	"plugins": {
		"scout": {"hooks": "pull,build"}
	},
	"features": {"buildkit": "true"},
	"proxies": {"default": {"httpProxy": "http://proxy:3128", "noProxy": "*.local,<none>&"}},
	"x-unknown-future-key": [1, 2.50, {"nested": null}]
}`

func writeConfig(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s is not JSON any more: %v\n%s", path, err, data)
	}
	return m
}

func TestEnableKeepsEverythingElse(t *testing.T) {
	path := writeConfig(t, busyConfig, 0o640)
	var before map[string]any
	if err := json.Unmarshal([]byte(busyConfig), &before); err != nil {
		t.Fatal(err)
	}

	res, err := EnableHooks(path, "autobackup", hooked)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.FeatureWasFalse {
		t.Errorf("result = %+v, want Changed and not FeatureWasFalse", res)
	}
	got := readJSON(t, path)
	var want map[string]any
	_ = json.Unmarshal([]byte(busyConfig), &want)
	want["plugins"].(map[string]any)["autobackup"] = map[string]any{"hooks": "compose up,compose down", markerKey: "true"}
	want["features"].(map[string]any)["hooks"] = "true"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after enable:\n got %v\nwant %v", got, want)
	}

	// Key order is kept; the new plugin section comes after scout's.
	data, _ := os.ReadFile(path)
	o, err := ParseObject(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Keys(), []string{"auths", "credsStore", "currentContext", "plugins", "features", "proxies", "x-unknown-future-key"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
	plugins, _ := o.Object("plugins")
	if got, want := plugins.Keys(), []string{"scout", "autobackup"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plugins keys = %v, want %v", got, want)
	}
	if !strings.Contains(string(data), `"noProxy": "*.local,<none>&"`) {
		t.Errorf("string value re-escaped:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", fi.Mode().Perm())
	}

	// Disable returns the file to its original content.
	if _, err := DisableHooks(path, "autobackup"); err != nil {
		t.Fatal(err)
	}
	if got := readJSON(t, path); !reflect.DeepEqual(got, before) {
		t.Errorf("after disable:\n got %v\nwant %v", got, before)
	}
}

func TestEnableDisableIdempotent(t *testing.T) {
	path := writeConfig(t, busyConfig, 0o600)
	if _, err := EnableHooks(path, "autobackup", hooked); err != nil {
		t.Fatal(err)
	}
	once, _ := os.ReadFile(path)
	fi1, _ := os.Stat(path)
	res, err := EnableHooks(path, "autobackup", hooked)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Error("second enable wrote the file")
	}
	twice, _ := os.ReadFile(path)
	fi2, _ := os.Stat(path)
	if string(once) != string(twice) || !os.SameFile(fi1, fi2) {
		t.Errorf("second enable changed the file:\n%s\n---\n%s", once, twice)
	}

	if _, err := DisableHooks(path, "autobackup"); err != nil {
		t.Fatal(err)
	}
	res, err = DisableHooks(path, "autobackup")
	if err != nil || res.Changed {
		t.Errorf("second disable: %+v, %v; want no change", res, err)
	}
}

func TestMissingFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new-docker-config")
	path := filepath.Join(dir, FileName)

	// Disabling what was never enabled creates nothing.
	if res, err := DisableHooks(path, "autobackup"); err != nil || res.Changed {
		t.Fatalf("disable on a missing file: %+v, %v", res, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("disable created %s", dir)
	}

	if _, err := EnableHooks(path, "autobackup", hooked); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode = %v, want 0600 (it may hold credentials)", fi.Mode().Perm())
	}
	want := map[string]any{
		"plugins":  map[string]any{"autobackup": map[string]any{"hooks": "compose up,compose down", markerKey: "true"}},
		"features": map[string]any{"hooks": "true"},
	}
	if got := readJSON(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := DisableHooks(path, "autobackup"); err != nil {
		t.Fatal(err)
	}
	if got := readJSON(t, path); len(got) != 0 {
		t.Errorf("after disable: %v, want {}", got)
	}
}

func TestBrokenFileRefused(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"syntax", `{"auths": {}`},
		{"array", `[1, 2]`},
		{"trailing", `{} {}`},
		{"plugins not an object", `{"plugins": "yes"}`},
		{"features not an object", `{"features": ["hooks"]}`},
		{"our section not an object", `{"plugins": {"autobackup": 3}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.content, 0o600)
			for name, fn := range map[string]func() (HooksResult, error){
				"enable":  func() (HooksResult, error) { return EnableHooks(path, "autobackup", hooked) },
				"disable": func() (HooksResult, error) { return DisableHooks(path, "autobackup") },
			} {
				_, err := fn()
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("%s: err = %v, want *ParseError", name, err)
				}
				if got, _ := os.ReadFile(path); string(got) != tc.content {
					t.Errorf("%s changed the broken file to %q", name, got)
				}
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("left files behind: %v", entries)
			}
		})
	}
}

func TestFeatureOwnership(t *testing.T) {
	for _, tc := range []struct {
		name, before    string
		wantWasFalse    bool
		wantAfterEnable string // features.hooks
		wantKept        bool
		wantAfterOff    any // features.hooks after disable; nil: removed
	}{
		{"absent: we set it, we remove it", `{}`, false, "true", false, nil},
		{"on already: someone else's, kept", `{"features": {"hooks": "true"}}`, false, "true", true, "true"},
		{"off: turned on, then removed", `{"features": {"hooks": "false"}}`, true, "true", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.before, 0o600)
			res, err := EnableHooks(path, "autobackup", hooked)
			if err != nil {
				t.Fatal(err)
			}
			if res.FeatureWasFalse != tc.wantWasFalse {
				t.Errorf("FeatureWasFalse = %v, want %v", res.FeatureWasFalse, tc.wantWasFalse)
			}
			if got := readJSON(t, path)["features"].(map[string]any)["hooks"]; got != tc.wantAfterEnable {
				t.Errorf("features.hooks after enable = %v, want %v", got, tc.wantAfterEnable)
			}
			res, err = DisableHooks(path, "autobackup")
			if err != nil {
				t.Fatal(err)
			}
			if res.FeatureKept != tc.wantKept {
				t.Errorf("FeatureKept = %v, want %v", res.FeatureKept, tc.wantKept)
			}
			var got any
			if f, ok := readJSON(t, path)["features"].(map[string]any); ok {
				got = f["hooks"]
			}
			if got != tc.wantAfterOff {
				t.Errorf("features.hooks after disable = %v, want %v", got, tc.wantAfterOff)
			}
		})
	}
}

func TestEnableMergesCommands(t *testing.T) {
	path := writeConfig(t, `{"plugins": {"autobackup": {"hooks": "compose start", "other": "x"}}}`, 0o600)
	if _, err := EnableHooks(path, "autobackup", hooked); err != nil {
		t.Fatal(err)
	}
	cmds, feature, err := HooksEnabled(path, "autobackup")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"compose start", "compose up", "compose down"}; !reflect.DeepEqual(cmds, want) || !feature {
		t.Errorf("HooksEnabled = %v, %v; want %v, true", cmds, feature, want)
	}
	if _, err := DisableHooks(path, "autobackup"); err != nil {
		t.Fatal(err)
	}
	// The section holds another key of ours: it stays, without hooks.
	want := map[string]any{"plugins": map[string]any{"autobackup": map[string]any{"other": "x"}}}
	if got := readJSON(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSymlinkedConfigEditedAtTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles-config.json")
	if err := os.WriteFile(target, []byte(`{"credsStore": "pass"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, FileName)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := EnableHooks(link, "autobackup", hooked); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("config.json is no longer a symlink: %v, %v", fi.Mode(), err)
	}
	if got := readJSON(t, target); got["credsStore"] != "pass" || got["features"] == nil {
		t.Errorf("target = %v", got)
	}
}

func TestParseObjectEmptyAndDuplicates(t *testing.T) {
	for _, in := range []string{"", "  \n", "{}"} {
		o, err := ParseObject([]byte(in))
		if err != nil || o.Len() != 0 {
			t.Errorf("ParseObject(%q) = %v keys, %v", in, o, err)
		}
	}
	o, err := ParseObject([]byte(`{"a": 1, "b": 2, "a": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := o.MarshalJSON()
	if got, want := string(b), `{"a":3,"b":2}`; got != want {
		t.Errorf("duplicates: got %s, want %s", got, want)
	}
}
