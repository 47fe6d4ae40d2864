package cliconfig

import (
	"fmt"
	"slices"
	"strings"
)

// The keys the docker CLI (≥ 26.1) reads to run plugin hooks:
//
//	"plugins":  {"<plugin>": {"hooks": "compose up,compose down"}}
//	"features": {"hooks": "true"}
const (
	pluginsKey  = "plugins"
	featuresKey = "features"
	hooksKey    = "hooks"
	// markerKey, in our own plugin section, records that EnableHooks set
	// features.hooks, so that DisableHooks removes it again but never
	// removes a setting the user (or Docker Desktop, or another plugin's
	// installer) made. The docker CLI ignores other keys in a plugin's
	// section: they are the plugin's own configuration.
	markerKey = "autobackup-set-features-hooks"
)

// HooksResult says what EnableHooks or DisableHooks did.
type HooksResult struct {
	Changed bool // the file was written
	// FeatureWasFalse: features.hooks was "false", a choice someone made;
	// EnableHooks turned it on, for every plugin's hooks.
	FeatureWasFalse bool
	// FeatureKept: DisableHooks left features.hooks as it is, because we
	// did not set it.
	FeatureKept bool
}

// EnableHooks makes the docker CLI call plugin's hook subcommand after each
// of commands (e.g. "compose up"): it adds them to
// plugins.<plugin>.hooks (keeping commands already listed there) and sets
// features.hooks to "true". Idempotent.
func EnableHooks(path, plugin string, commands []string) (HooksResult, error) {
	var res HooksResult
	changed, err := Edit(path, func(root *Object) error {
		plugins, mine, features, err := hookSections(path, root, plugin)
		if err != nil {
			return err
		}

		cur, _ := mine.String(hooksKey)
		list := splitList(cur)
		for _, c := range commands {
			if !slices.Contains(list, c) {
				list = append(list, c)
			}
		}
		mine.SetString(hooksKey, strings.Join(list, ","))

		switch v, ok := features.String(hooksKey); {
		case ok && isTrue(v):
			// Already on, by us or by someone else: leave the marker as it is.
		default:
			res.FeatureWasFalse = ok
			features.SetString(hooksKey, "true")
			mine.SetString(markerKey, "true")
		}
		plugins.SetObject(plugin, mine)
		root.SetObject(pluginsKey, plugins)
		root.SetObject(featuresKey, features)
		return nil
	})
	res.Changed = changed
	return res, err
}

// DisableHooks removes plugin's hook configuration (plugins.<plugin>.hooks,
// and the plugin's section when nothing else is left in it) and removes
// features.hooks only if EnableHooks set it: other plugins' hooks may rely
// on it. Idempotent; a missing file stays missing.
func DisableHooks(path, plugin string) (HooksResult, error) {
	var res HooksResult
	changed, err := Edit(path, func(root *Object) error {
		plugins, mine, features, err := hookSections(path, root, plugin)
		if err != nil {
			return err
		}
		_, weSet := mine.String(markerKey)
		if v, ok := features.String(hooksKey); ok {
			if weSet && isTrue(v) {
				features.Delete(hooksKey)
			} else {
				res.FeatureKept = true
			}
		}
		mine.Delete(hooksKey)
		mine.Delete(markerKey)
		plugins.SetObject(plugin, mine)
		if _, had := root.Get(pluginsKey); had {
			root.SetObject(pluginsKey, plugins)
		}
		if _, had := root.Get(featuresKey); had {
			root.SetObject(featuresKey, features)
		}
		return nil
	})
	res.Changed = changed
	return res, err
}

// HooksEnabled reports the commands configured for plugin and whether
// features.hooks is on in the file at path (environment overrides such as
// DOCKER_CLI_HOOKS are the caller's to check).
func HooksEnabled(path, plugin string) (commands []string, feature bool, err error) {
	root, err := Read(path)
	if err != nil {
		return nil, false, err
	}
	plugins, err := root.Object(pluginsKey)
	if err != nil {
		return nil, false, &ParseError{Path: path, Err: err}
	}
	mine, err := plugins.Object(plugin)
	if err != nil {
		return nil, false, &ParseError{Path: path, Err: err}
	}
	features, err := root.Object(featuresKey)
	if err != nil {
		return nil, false, &ParseError{Path: path, Err: err}
	}
	cur, _ := mine.String(hooksKey)
	v, _ := features.String(hooksKey)
	return splitList(cur), isTrue(v), nil
}

// splitList splits a comma-separated hooks value as the docker CLI does,
// dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// isTrue reads a feature value as the docker CLI does (strconv.ParseBool).
func isTrue(v string) bool {
	switch v {
	case "1", "t", "T", "TRUE", "true", "True":
		return true
	}
	return false
}

// hookSections returns the objects hooks live in: plugins, plugins.<plugin>
// and features (empty ones when absent); a non-object there is a
// *ParseError.
func hookSections(path string, root *Object, plugin string) (plugins, mine, features *Object, err error) {
	if plugins, err = root.Object(pluginsKey); err != nil {
		return nil, nil, nil, &ParseError{Path: path, Err: err}
	}
	if mine, err = plugins.Object(plugin); err != nil {
		return nil, nil, nil, &ParseError{Path: path, Err: fmt.Errorf("%s: %w", pluginsKey, err)}
	}
	if features, err = root.Object(featuresKey); err != nil {
		return nil, nil, nil, &ParseError{Path: path, Err: err}
	}
	return plugins, mine, features, nil
}
