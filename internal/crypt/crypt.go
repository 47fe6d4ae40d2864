package crypt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"github.com/docker-autobackup/docker-autobackup/internal/text"
)

// Suffix ends the name of an object encrypted with age.
const Suffix = ".age"

// ErrWrongIdentity is wrapped by Decrypt when none of the identities can
// open the data: it was encrypted to other recipients.
var ErrWrongIdentity = errors.New("no identity matches")

// ParseRecipients parses a comma-separated list of recipients. Each item is
// an age public key (age1…), an ssh-ed25519 or ssh-rsa public key, or the
// path of a recipients file (one of those per line, # comments), relative
// paths resolved against baseDir. An empty spec is no recipients and no
// error.
func ParseRecipients(spec, baseDir string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if looksLikeKey(item) {
			r, err := parseRecipient(item)
			if err != nil {
				return nil, fmt.Errorf("recipient %s: %w", text.Truncate(item, 24), err)
			}
			out = append(out, r)
			continue
		}
		path := item
		if !filepath.IsAbs(path) && baseDir != "" {
			path = filepath.Join(baseDir, path)
		}
		rs, err := recipientsFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func looksLikeKey(s string) bool {
	return strings.HasPrefix(s, "age1") || strings.HasPrefix(s, "ssh-")
}

func parseRecipient(s string) (age.Recipient, error) {
	if strings.HasPrefix(s, "ssh-") {
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("want an ssh-ed25519 or ssh-rsa public key: %w", err)
		}
		return r, nil
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("want an age public key (age1…): %w", err)
	}
	return r, nil
}

func recipientsFile(path string) ([]age.Recipient, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	var out []age.Recipient
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseRecipient(line)
		if err != nil {
			return nil, fmt.Errorf("recipients file %s line %d: %w", path, n, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("recipients file %s: no recipients in it", path)
	}
	return out, nil
}

// LoadIdentities reads an identity file: age identities (AGE-SECRET-KEY-1…,
// one per line, # comments) or an unencrypted OpenSSH private key
// (ed25519 or RSA).
func LoadIdentities(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		id, err := agessh.ParseIdentity(data)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: ssh key: %w (passphrase-protected keys are not supported)", path, err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

// Encrypt returns a writer that encrypts to recipients into dst. Close
// must be called to write the last chunk; it does not close dst.
func Encrypt(dst io.Writer, recipients []age.Recipient) (io.WriteCloser, error) {
	if len(recipients) == 0 {
		return nil, errors.New("encrypt: no recipients")
	}
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return w, nil
}

// Decrypt returns a reader of the plaintext of src. Data encrypted to
// other recipients gives an error wrapping ErrWrongIdentity. Tampered
// data fails when read.
func Decrypt(src io.Reader, identities []age.Identity) (io.Reader, error) {
	if len(identities) == 0 {
		return nil, errors.New("decrypt: no identity given")
	}
	r, err := age.Decrypt(src, identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("decrypt: %w: the data was encrypted to other recipients than this identity", ErrWrongIdentity)
		}
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return r, nil
}
