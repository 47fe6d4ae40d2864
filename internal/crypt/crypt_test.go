package crypt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

func TestRoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(idFile, []byte("# test\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sshFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(sshFile, sshPEM(t, priv), 0o600); err != nil {
		t.Fatal(err)
	}
	recFile := filepath.Join(dir, "recipients.txt")
	if err := os.WriteFile(recFile, []byte("# ops\n"+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	rs, err := ParseRecipients(id.Recipient().String()+", recipients.txt", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rs), 2; got != want {
		t.Fatalf("recipients: got %d, want %d", got, want)
	}
	plain := bytes.Repeat([]byte("volume data "), 200_000)
	var ct bytes.Buffer
	w, err := Encrypt(&ct, rs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{idFile, sshFile} {
		ids, err := LoadIdentities(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r, err := Decrypt(bytes.NewReader(ct.Bytes()), ids)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("%s: plaintext differs", f)
		}
	}

	other, _ := age.GenerateX25519Identity()
	if _, err := Decrypt(bytes.NewReader(ct.Bytes()), []age.Identity{other}); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("wrong identity: got %v, want ErrWrongIdentity", err)
	}
	bad := bytes.Clone(ct.Bytes())
	bad[len(bad)-100] ^= 1
	r, err := Decrypt(bytes.NewReader(bad), []age.Identity{id})
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if err == nil {
		t.Error("tampered ciphertext decrypted without error")
	}
}

func sshPEM(t *testing.T, priv ed25519.PrivateKey) []byte {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestParseRecipientsErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"age1notakey", "want an age public key"},
		{"ssh-ed25519 AAAAbroken", "want an ssh-ed25519 or ssh-rsa public key"},
		{"missing-file.txt", "recipients file"},
	}
	for _, tt := range tests {
		_, err := ParseRecipients(tt.spec, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRecipients(%q): got %v, want an error containing %q", tt.spec, err, tt.want)
		}
	}
	if rs, err := ParseRecipients(" , ", ""); err != nil || len(rs) != 0 {
		t.Errorf("empty spec: got %d recipients, %v", len(rs), err)
	}
}
