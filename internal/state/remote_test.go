package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoteSetResolveSave(t *testing.T) {
	var r Remote
	for _, kv := range [][2]string{
		{"remote.url", "s3://bkt/team"}, {"remote.endpoint", "http://127.0.0.1:7070"}, {"remote.path_style", "true"},
		{"Remote.Retention-Days", "30"}, {"remote.encrypt_to", "age1abc, ./ops.txt"},
	} {
		if err := r.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s): %v", kv[0], err)
		}
	}
	compose := Remote{Region: ptr("eu-west-1"), URL: ptr("s3://other")}
	got := r.Resolve(compose)
	want := RemoteResolved{URL: "s3://bkt/team", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", PathStyle: true, RetentionDays: 30, EncryptTo: "age1abc, ./ops.txt"}
	if got != want {
		t.Errorf("Resolve:\n got %+v\nwant %+v", got, want)
	}

	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, &File{Remote: r}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "[remote]\nurl = \"s3://bkt/team\"") {
		t.Errorf("saved file lacks the [remote] table:\n%s", data)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Remote.Resolve(Remote{}) != r.Resolve(Remote{}) {
		t.Errorf("round trip changed the remote")
	}
	if err := Save(path, &File{}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "[remote]") {
		t.Errorf("an empty remote is written:\n%s", data)
	}
}

func TestRemoteRefusesSecretsAndBadValues(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"remote.url", "s3://AKIA:topsecret@bkt/x", "credentials do not belong"},
		{"remote.endpoint", "https://AKIA:topsecret@s3.example", "credentials do not belong"},
		{"remote.url", "https://bkt", "want s3://bucket"},
		{"remote.path_style", "maybe", "want true or false"},
		{"remote.host", "a/b", "without /"},
		{"remote.secret_key", "x", "unknown setting"},
	}
	for _, tt := range tests {
		var r Remote
		err := r.Set(tt.key, tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%s, %s): got %v, want %q", tt.key, tt.value, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Set(%s): the error repeats the secret: %v", tt.key, err)
		}
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte("[remote]\nsecret_access_key = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "unknown remote setting") {
		t.Errorf("Load of a secret key: got %v", err)
	}
}
