package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validManifest = `{
  "format_version": 1,
  "id": "20261125-231500-a1b2",
  "project": "shop",
  "project_dir": "/srv/shop",
  "tag": "before-upgrade",
  "tool_version": "0.1.0",
  "mode": "stream",
  "started": "2026-11-25T23:15:00Z",
  "finished": "2026-11-25T23:15:09.5+01:00",
  "downtime_seconds": 7.25,
  "volumes": [
    {
      "name": "shop_dbdata",
      "key": "dbdata",
      "external": false,
      "driver": "local",
      "driver_opts": {"type": "none"},
      "labels": {"com.docker.compose.project": "shop"},
      "archive": "shop_dbdata.tar.zst",
      "archive_bytes": 1234,
      "tar_bytes": 5678,
      "sha256": "2ac0079608b283a19e09f80d09d3a8e9908a09079695c0f0ab20d38b4e5f3397"
    }
  ],
  "services": [
    {"name": "db", "image": "postgres:17", "image_id": "sha256:abc", "repo_digests": ["postgres@sha256:def"]}
  ]
}
`

func TestParseManifestValid(t *testing.T) {
	m, err := ParseManifest([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Volumes[0].Key, "dbdata"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
	if got, want := m.DowntimeSeconds, 7.25; got != want {
		t.Errorf("downtime = %v, want %v", got, want)
	}
	// What we write reads back the same.
	data, err := marshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	data2, err := marshalManifest(m2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		t.Errorf("round trip changed the manifest:\n%s\n%s", data, data2)
	}

	path := filepath.Join(t.TempDir(), ManifestName)
	if err := os.WriteFile(path, []byte(validManifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(path); err != nil {
		t.Errorf("ReadManifest: %v", err)
	}
}

func TestParseManifestInvalid(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(validManifest, old) {
			panic("test edit does not apply: " + old)
		}
		return strings.Replace(validManifest, old, new, 1)
	}
	vol := `{"name": "shop_dbdata", "key": "dbdata", "archive": "shop_dbdata.tar.zst", "sha256": "2ac0079608b283a19e09f80d09d3a8e9908a09079695c0f0ab20d38b4e5f3397"}`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", ``, "decode"},
		{"not an object", `[]`, "decode"},
		{"unknown field", edit(`"tag"`, `"tags"`), `unknown field "tags"`},
		{"unknown volume field", edit(`"external"`, `"externally"`), `unknown field "externally"`},
		{"trailing data", validManifest + `{}`, "after the manifest"},
		{"missing version", edit(`"format_version": 1,`, ``), "format_version: missing"},
		{"future version", edit(`"format_version": 1`, `"format_version": 2`), "format_version: unsupported version 2"},
		{"bad id", edit(`"20261125-231500-a1b2"`, `"../../x"`), "id: invalid backup id"},
		{"missing project", edit(`"project": "shop"`, `"project": ""`), "project: missing"},
		{"bad mode", edit(`"stream"`, `"fast"`), "mode:"},
		{"negative downtime", edit(`7.25`, `-1`), "downtime_seconds"},
		{"archive with slash", edit(`"shop_dbdata.tar.zst"`, `"../shop_dbdata.tar.zst"`), "volumes[0].archive:"},
		{"archive absolute", edit(`"shop_dbdata.tar.zst"`, `"/etc/passwd"`), "not a plain file name"},
		{"archive dotdot", edit(`"shop_dbdata.tar.zst"`, `"a..b"`), `contains ".."`},
		{"archive hidden", edit(`"shop_dbdata.tar.zst"`, `".partial"`), `starts with "."`},
		{"archive is manifest", edit(`"shop_dbdata.tar.zst"`, `"manifest.json"`), "is the manifest"},
		{"archive empty", edit(`"shop_dbdata.tar.zst"`, `""`), "volumes[0].archive: missing"},
		{"archive backslash", edit(`"shop_dbdata.tar.zst"`, `"a\\b"`), "not a plain file name"},
		{"sha uppercase", edit(`2ac0079608b2`, `2AC0079608B2`), "volumes[0].sha256:"},
		{"sha short", edit(`2ac0079608b2`, `2ac0079608b`), "volumes[0].sha256:"},
		{"negative size", edit(`1234`, `-1`), "volumes[0].archive_bytes: negative"},
		{"volume name missing", edit(`"name": "shop_dbdata"`, `"name": ""`), "volumes[0].name: missing"},
		{"volume name slash", edit(`"name": "shop_dbdata"`, `"name": "a/b"`), "volumes[0].name: invalid"},
		{"duplicate service", edit(`{"name": "db",`, `{"name": "db"}, {"name": "db",`), "services[1].name: duplicate"},
		{"service name missing", edit(`{"name": "db",`, `{"name": "",`), "services[0].name: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseManifest error = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	dup := func(a, b string) string {
		return `{"format_version": 1, "id": "20261125-231500-a1b2", "project": "p", "mode": "staged", "volumes": [` + a + `,` + b + `]}`
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"duplicate name", dup(vol, strings.Replace(vol, `"shop_dbdata.tar.zst"`, `"other.tar.zst"`, 1)), `volumes[1].name: duplicate volume "shop_dbdata"`},
		{"duplicate key", dup(vol, strings.Replace(strings.Replace(vol, `"shop_dbdata.tar.zst"`, `"other.tar.zst"`, 1), `"shop_dbdata"`, `"x1"`, 1)), `volumes[1].key: duplicate key "dbdata"`},
		{"duplicate archive", dup(vol, strings.Replace(strings.Replace(vol, `"dbdata"`, `"k2"`, 1), `"shop_dbdata"`, `"x1"`, 1)), `volumes[1].archive: duplicate archive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseManifest error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReadManifestErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadManifest(filepath.Join(dir, "missing.json")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
	path := filepath.Join(dir, ManifestName)
	if err := os.WriteFile(path, []byte(`{"format_version": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadManifest(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "format_version") {
		t.Errorf("ReadManifest error = %v, want path and field", err)
	}
}

// FuzzParseManifest checks that ParseManifest never panics and that every
// manifest it accepts survives writing and reading back unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format_version": 1, "id": "20261125-231500-a1b2", "project": "p", "mode": "staged", "volumes": [], "services": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		out, err := marshalManifest(m)
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("written manifest is refused: %v\n%s", err, out)
		}
		out2, err := marshalManifest(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("manifest changes on a round trip:\n%s\n%s", out, out2)
		}
	})
}
