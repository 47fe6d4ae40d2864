package notify

import (
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Mask replaces a secret in redacted text.
const Mask = "***"

// secretQueryKeys are query parameters whose values are credentials.
var secretQueryKeys = regexp.MustCompile(`(?i)(token|key|secret|pass|auth|sig|password|credential|apikey)`)

// tokenLike matches path segments that are probably credentials: long,
// and made of the characters tokens and UUIDs are made of.
var tokenLike = regexp.MustCompile(`^[A-Za-z0-9_\-.~=+]{16,}$`)

// Redactor scrubs the secrets of a set of URLs from any text: user names,
// passwords, secret-looking query values and header parameters, and
// token-like path segments (a healthchecks.io check UUID, an Uptime Kuma
// push token, a webhook key). The zero value scrubs nothing.
type Redactor struct {
	secrets []string // longest first, so a secret inside another is not half-replaced
}

// NewRedactor collects the secrets of urls. Strings that do not parse as
// URLs are treated as secrets whole.
func NewRedactor(urls ...string) *Redactor {
	r := &Redactor{}
	for _, u := range urls {
		r.secrets = append(r.secrets, secretsOf(u)...)
	}
	var out []string
	for _, s := range r.secrets {
		if len(s) < 3 || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
		for _, enc := range []string{url.QueryEscape(s), url.PathEscape(s)} {
			if enc != s && !slices.Contains(out, enc) {
				out = append(out, enc)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	r.secrets = out
	return r
}

// Scrub returns s with every secret replaced by Mask.
func (r *Redactor) Scrub(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// Redact returns the URL u with its secrets masked, for display.
func Redact(u string) string { return NewRedactor(u).Scrub(u) }

func secretsOf(raw string) []string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		// A user name next to a password is an account name (smtp://user:pass@);
		// alone, it is the token (discord://TOKEN@id, telegram://TOKEN@telegram).
		p, hasPass := u.User.Password()
		if n := u.User.Username(); n != "" && (!hasPass || p == "" || looksLikeToken(n)) {
			out = append(out, n)
		}
		if hasPass && p != "" {
			out = append(out, p)
		}
	}
	for k, vs := range u.Query() {
		if !strings.HasPrefix(k, "@") && (!secretQueryKeys.MatchString(k) || strings.EqualFold(k, "auth")) {
			continue
		}
		for _, v := range vs {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	segs := strings.Split(u.Path, "/")
	for i, seg := range segs {
		switch {
		case looksLikeToken(seg):
			out = append(out, seg)
		case i > 0 && segs[i-1] == "push" && seg != "":
			// An Uptime Kuma push token, short as it may be.
			out = append(out, seg)
		}
	}
	// Services such as telegram://TOKEN@telegram or discord://TOKEN@ID
	// keep the credential in the host part when there is no user info.
	if u.User == nil && looksLikeToken(u.Hostname()) && !strings.Contains(u.Hostname(), ".") {
		out = append(out, u.Hostname())
	}
	return out
}

func looksLikeToken(s string) bool {
	return tokenLike.MatchString(s) && strings.ContainsAny(s, "0123456789")
}
