package compose

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// ExtensionKey is the compose extension that configures autobackup.
const ExtensionKey = "x-autobackup"

// LabelPrefix starts the service and volume labels that configure
// autobackup for people who cannot use extensions (autobackup.stop=false).
const LabelPrefix = "autobackup."

// DefaultHookTimeout bounds an x-autobackup pre or post command.
const DefaultHookTimeout = 2 * time.Minute

// ServiceOptions is a service's x-autobackup block (or its labels).
type ServiceOptions struct {
	Pre     []string      // exec'd in the running container before anything is stopped
	Post    []string      // exec'd after the services are back
	Stop    bool          // false keeps the service running during the backup
	Timeout time.Duration // for Pre and Post
}

// VolumeOptions is a volume's x-autobackup block (or its labels).
type VolumeOptions struct {
	Skip bool
}

// Extensions is every x-autobackup setting of a project.
type Extensions struct {
	Services map[string]ServiceOptions // every service, defaults filled in
	Volumes  map[string]VolumeOptions  // by volume key, only those configured
	Project  map[string]any            // project-level defaults (settings keys), validated by the caller
}

// ParseExtensions reads and validates x-autobackup blocks and autobackup.*
// labels. Unknown keys and wrong types are errors naming the place.
func ParseExtensions(p *types.Project) (*Extensions, error) {
	ext := &Extensions{Services: map[string]ServiceOptions{}, Volumes: map[string]VolumeOptions{}}
	names := p.ServiceNames()
	sort.Strings(names)
	for _, name := range names {
		svc := p.Services[name]
		o := ServiceOptions{Stop: true, Timeout: DefaultHookTimeout}
		where := fmt.Sprintf("services.%s.labels", name)
		for k, v := range svc.Labels {
			if !strings.HasPrefix(k, LabelPrefix) {
				continue
			}
			if err := o.set(strings.TrimPrefix(k, LabelPrefix), v, true); err != nil {
				return nil, fmt.Errorf("%w: %s: %s: %v", ErrInvalidProject, where, k, err)
			}
		}
		if raw, ok := svc.Extensions[ExtensionKey]; ok {
			m, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: services.%s.%s must be a mapping, e.g. {stop: false}", ErrInvalidProject, name, ExtensionKey)
			}
			for _, k := range sortedKeys(m) {
				if err := o.set(k, m[k], false); err != nil {
					return nil, fmt.Errorf("%w: services.%s.%s.%s: %v", ErrInvalidProject, name, ExtensionKey, k, err)
				}
			}
		}
		ext.Services[name] = o
	}
	for key, vol := range p.Volumes {
		var o VolumeOptions
		set := false
		for k, v := range vol.Labels {
			if !strings.HasPrefix(k, LabelPrefix) {
				continue
			}
			if err := o.set(strings.TrimPrefix(k, LabelPrefix), v); err != nil {
				return nil, fmt.Errorf("%w: volumes.%s.labels: %s: %v", ErrInvalidProject, key, k, err)
			}
			set = true
		}
		if raw, ok := vol.Extensions[ExtensionKey]; ok {
			m, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: volumes.%s.%s must be a mapping, e.g. {skip: true}", ErrInvalidProject, key, ExtensionKey)
			}
			for _, k := range sortedKeys(m) {
				if err := o.set(k, m[k]); err != nil {
					return nil, fmt.Errorf("%w: volumes.%s.%s.%s: %v", ErrInvalidProject, key, ExtensionKey, k, err)
				}
			}
			set = true
		}
		if set {
			ext.Volumes[key] = o
		}
	}
	if raw, ok := p.Extensions[ExtensionKey]; ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: top-level %s must be a mapping of settings, e.g. {directory: /srv/backups}", ErrInvalidProject, ExtensionKey)
		}
		ext.Project = m
	}
	return ext, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (o *ServiceOptions) set(key string, v any, fromLabel bool) error {
	var err error
	switch key {
	case "pre":
		o.Pre, err = command(v, fromLabel)
	case "post":
		o.Post, err = command(v, fromLabel)
	case "stop":
		o.Stop, err = boolean(v)
	case "timeout":
		o.Timeout, err = duration(v)
	default:
		return fmt.Errorf("unknown key %q (valid: pre, post, stop, timeout)", key)
	}
	return err
}

func (o *VolumeOptions) set(key string, v any) error {
	var err error
	switch key {
	case "skip":
		o.Skip, err = boolean(v)
	default:
		return fmt.Errorf("unknown key %q (valid: skip)", key)
	}
	return err
}

// command accepts a list of strings (exec form) or a string (run with
// sh -c, as labels can only hold strings).
func command(v any, fromLabel bool) ([]string, error) {
	switch c := v.(type) {
	case string:
		if strings.TrimSpace(c) == "" {
			return nil, fmt.Errorf("empty command")
		}
		return []string{"sh", "-c", c}, nil
	case []any:
		if len(c) == 0 {
			return nil, fmt.Errorf("empty command")
		}
		out := make([]string, len(c))
		for i, a := range c {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("element %d is %T; want a string, e.g. [\"sh\", \"-c\", \"pg_dump ...\"]", i, a)
			}
			out[i] = s
		}
		return out, nil
	}
	_ = fromLabel
	return nil, fmt.Errorf("want a command as a list, e.g. [\"sh\", \"-c\", \"pg_dump ...\"], or a string; got %T", v)
}

func boolean(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		r, err := strconv.ParseBool(b)
		if err != nil {
			return false, fmt.Errorf("want true or false, got %q", b)
		}
		return r, nil
	}
	return false, fmt.Errorf("want true or false, got %T", v)
}

func duration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case string:
		r, err := time.ParseDuration(d)
		if err != nil || r <= 0 {
			return 0, fmt.Errorf("want a positive duration like 120s or 5m, got %q", d)
		}
		return r, nil
	case int:
		if d <= 0 {
			return 0, fmt.Errorf("want a positive duration like 120s, got %d", d)
		}
		return time.Duration(d) * time.Second, nil
	}
	return 0, fmt.Errorf("want a duration like 120s, got %T", v)
}
