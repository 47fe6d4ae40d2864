package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitURLs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"ntfy://ntfy.sh/a", []string{"ntfy://ntfy.sh/a"}},
		{"ntfy://ntfy.sh/a, generic+https://h/x?template=json", []string{"ntfy://ntfy.sh/a", "generic+https://h/x?template=json"}},
		// Commas inside a URL stay: a list of recipients.
		{"smtp://u:p@h:25/?from=a@b.c&to=x@y.z,w@y.z,ntfy://ntfy.sh/a", []string{"smtp://u:p@h:25/?from=a@b.c&to=x@y.z,w@y.z", "ntfy://ntfy.sh/a"}},
	}
	for _, tt := range tests {
		if got := SplitURLs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNotifySettings(t *testing.T) {
	var s Settings
	if err := s.Set("notify", "ntfy://ntfy.sh/a,smtp://u:p@h:25/?from=a@b.c&to=x@y.z,w@y.z", ""); err != nil {
		t.Fatal(err)
	}
	if got := *s.Notify; len(got) != 2 {
		t.Errorf("notify = %q, want 2 URLs", got)
	}
	err := s.Set("notify", "nosuch://user:pw-9f8e7d6c5b4a@host", "")
	if err == nil || strings.Contains(err.Error(), "pw-9f8e7d6c5b4a") || !strings.Contains(err.Error(), "URL 1") {
		t.Errorf("Set of an unknown service: %v; want an error naming URL 1 without the password", err)
	}
	for _, bad := range [][2]string{{"notify_on", "sometimes"}, {"ping_url", "ftp://x"}, {"notify_timeout", "0s"}, {"metrics_file", "/tmp/"}} {
		if err := s.Set(bad[0], bad[1], ""); err == nil {
			t.Errorf("Set(%s, %q) accepted", bad[0], bad[1])
		}
	}
	if err := s.Set("notify_on", "ALWAYS", ""); err != nil || *s.NotifyOn != NotifyOnAlways {
		t.Errorf("notify_on ALWAYS: %v, %v", err, s.NotifyOn)
	}

	// The list survives the file, written as a TOML array.
	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, &File{Settings: s}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `notify = ["ntfy://ntfy.sh/a", "smtp://u:p@h:25/?from=a@b.c&to=x@y.z,w@y.z"]`) {
		t.Errorf("file:\n%s", data)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Settings.Notify, s.Notify) {
		t.Errorf("loaded notify %q, want %q", *f.Settings.Notify, *s.Notify)
	}

	// A broken URL in the file is refused with the secret masked.
	if err := os.WriteFile(path, []byte("[settings]\nnotify = [\"nosuch://u:pw-1a2b3c4d5e6f@h\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || strings.Contains(err.Error(), "pw-1a2b3c4d5e6f") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load of a bad notify URL: %v; want a line-2 error without the password", err)
	}

	// From a compose file: a YAML list.
	c, err := SettingsFromMap(map[string]any{"notify": []any{"ntfy://ntfy.sh/a", "ntfy://ntfy.sh/b"}}, "")
	if err != nil || len(*c.Notify) != 2 {
		t.Errorf("SettingsFromMap(list) = %v, %v", c.Notify, err)
	}
	if r := c.Resolve(Settings{}); r.NotifyOn != NotifyOnFailure || r.NotifyTimeout.Seconds() != 10 {
		t.Errorf("defaults: %+v", r)
	}
}

func TestMonitorRecords(t *testing.T) {
	var f File
	d := Delivery{Kind: DeliveryPing, Target: "https://hc/***", Event: "a", Error: "x"}
	f.RecordDelivery(d)
	f.RecordDelivery(d)
	if len(f.Monitor.Pending) != 1 || f.Monitor.Pending[0].Attempts != 2 {
		t.Errorf("pending %+v, want one record with 2 attempts", f.Monitor.Pending)
	}
	f.RecordDelivery(Delivery{Kind: DeliveryNotify, Target: "ntfy://x", Event: "a"})
	f.ClearDelivery(DeliveryPing, "https://hc/***", "")
	if len(f.Monitor.Pending) != 1 || f.Monitor.Pending[0].Kind != DeliveryNotify {
		t.Errorf("after clearing the ping: %+v", f.Monitor.Pending)
	}
	f.ClearDelivery(DeliveryNotify, "ntfy://x", "b")
	if len(f.Monitor.Pending) != 1 {
		t.Errorf("clearing another event's notification removed %+v", f.Monitor.Pending)
	}
	f.KeepDeliveries(func(d Delivery) bool { return d.Target != "ntfy://x" })
	if f.Monitor.Pending != nil {
		t.Errorf("KeepDeliveries left %+v", f.Monitor.Pending)
	}
	for i := range 2 * maxPending {
		f.RecordDelivery(Delivery{Kind: DeliveryNotify, Target: "ntfy://x", Event: string(rune('a'+i%26)) + strings.Repeat("x", i)})
	}
	if len(f.Monitor.Pending) != maxPending {
		t.Errorf("%d pending records, want at most %d", len(f.Monitor.Pending), maxPending)
	}
}
