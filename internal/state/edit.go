package state

import (
	"bytes"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// The settings file belongs to the user: the tool changes it only when
// asked to (config set/unset, enable, disable), and then edits the text of
// the keys that changed in place, so comments, blank lines, key order and
// layout survive. Everything else it writes goes to the history file.

// tableValues returns the keys of a table struct as TOML would write them,
// each with its value as a TOML literal ("30s", 7, true, ["a", "b"]).
func tableValues(v any) (map[string]string, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		var one bytes.Buffer
		e := toml.NewEncoder(&one)
		e.Indent = ""
		if err := e.Encode(map[string]any{k: val}); err != nil {
			return nil, err
		}
		line := strings.TrimSpace(one.String())
		_, lit, ok := strings.Cut(line, " = ")
		if !ok {
			continue // a nested table: not a setting this editor writes
		}
		out[k] = lit
	}
	return out, nil
}

// editTable changes text so that table holds want instead of have (both
// as tableValues returns them): changed keys get their new value where
// they are, removed keys lose their line, new keys go after the table's
// last key (a missing table is appended).
func editTable(text []byte, table string, have, want map[string]string) []byte {
	keys := slices.Sorted(maps.Keys(have))
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		h, inHave := have[k]
		w, inWant := want[k]
		switch {
		case inHave && inWant && h == w:
		case inWant:
			text = setKey(text, table, k, w)
		default:
			text = deleteKey(text, table, k)
		}
	}
	return text
}

// line is one line of a TOML document, with the table it is in.
type line struct {
	start, end int    // byte offsets; end includes the newline
	table      string // "" before the first header; "[[name]]" inside an array of tables
	header     bool
	key        string // the bare key when the line starts a key/value pair
	valStart   int    // offset of the value
}

// scanLines splits text into lines and tells headers and key lines apart.
// Continuation lines of a multi-line value are skipped as part of their
// key's line.
func scanLines(text []byte) []line {
	var out []line
	table := ""
	for off := 0; off < len(text); {
		end := bytes.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += off + 1
		}
		l := line{start: off, end: end, table: table}
		s := string(text[off:end])
		t := strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(t, "[["):
			name := strings.TrimSpace(strings.TrimPrefix(t, "[["))
			if i := strings.Index(name, "]]"); i >= 0 {
				name = strings.TrimSpace(name[:i])
			}
			table = "[[" + name + "]]"
			l.table, l.header = table, true
		case strings.HasPrefix(t, "["):
			name := strings.TrimSpace(strings.TrimPrefix(t, "["))
			if i := strings.IndexByte(name, ']'); i >= 0 {
				name = strings.TrimSpace(name[:i])
			}
			table = strings.Trim(name, `"`)
			l.table, l.header = table, true
		case t != "" && !strings.HasPrefix(t, "#"):
			if eq := strings.IndexByte(s, '='); eq > 0 {
				l.key = strings.Trim(strings.TrimSpace(s[:eq]), `"'`)
				l.valStart = off + eq + 1
				// A value may go on over several lines (arrays, strings).
				if vend := valueEnd(text, l.valStart); vend > end {
					if nl := bytes.IndexByte(text[vend:], '\n'); nl >= 0 {
						end = vend + nl + 1
					} else {
						end = len(text)
					}
					l.end = end
				}
			}
		}
		out = append(out, l)
		off = end
	}
	return out
}

// valueEnd returns the offset just after the TOML value starting at or
// after off (leading blanks skipped): strings, arrays and inline tables
// may span lines; anything else ends at a comment or the end of the line.
func valueEnd(text []byte, off int) int {
	i := off
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	depth := 0
	for i < len(text) {
		c := text[i]
		switch {
		case bytes.HasPrefix(text[i:], []byte(`"""`)), bytes.HasPrefix(text[i:], []byte(`'''`)):
			q := text[i : i+3]
			j := bytes.Index(text[i+3:], q)
			if j < 0 {
				return len(text)
			}
			i += 3 + j + 3
		case c == '"':
			i++
			for i < len(text) && text[i] != '"' && text[i] != '\n' {
				if text[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '\'':
			j := bytes.IndexAny(text[i+1:], "'\n")
			if j < 0 {
				return len(text)
			}
			i += 1 + j + 1
		case c == '[' || c == '{':
			depth++
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '#':
			if depth == 0 {
				return trimBlankEnd(text, off, i)
			}
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '\n' || c == '\r':
			if depth == 0 {
				return trimBlankEnd(text, off, i)
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(text) && (c == ']' || c == '}' || c == '"' || c == '\'') {
			// A closed value: what follows on the line is blanks and
			// perhaps a comment.
			return i
		}
	}
	return trimBlankEnd(text, off, min(i, len(text)))
}

func trimBlankEnd(text []byte, start, end int) int {
	for end > start && (text[end-1] == ' ' || text[end-1] == '\t') {
		end--
	}
	return end
}

// setKey gives key in table the value lit, in place when the key exists.
func setKey(text []byte, table, key, lit string) []byte {
	lines := scanLines(text)
	lastKey, header := -1, -1
	for i, l := range lines {
		if l.table != table {
			continue
		}
		if l.header {
			header = i
			continue
		}
		if l.key == key {
			vs := l.valStart
			for vs < len(text) && (text[vs] == ' ' || text[vs] == '\t') {
				vs++
			}
			ve := valueEnd(text, l.valStart)
			return slices.Concat(text[:vs], []byte(lit), text[ve:])
		}
		if l.key != "" {
			lastKey = i
		}
	}
	newLine := []byte(key + " = " + lit + "\n")
	switch {
	case lastKey >= 0:
		at := lines[lastKey].end
		var prefix []byte
		if text[at-1] != '\n' {
			prefix = []byte("\n")
		}
		return slices.Concat(text[:at], prefix, newLine, text[at:])
	case header >= 0:
		at := lines[header].end
		prefix := []byte{}
		if at > 0 && text[at-1] != '\n' {
			prefix = []byte("\n")
		}
		return slices.Concat(text[:at], prefix, newLine, text[at:])
	}
	var sep []byte
	if len(text) > 0 {
		sep = []byte("\n")
		if text[len(text)-1] != '\n' {
			sep = []byte("\n\n")
		}
	}
	return slices.Concat(text, sep, []byte("["+table+"]\n"), newLine)
}

// deleteKey removes the line (or lines) of key in table.
func deleteKey(text []byte, table, key string) []byte {
	for _, l := range scanLines(text) {
		if l.table == table && !l.header && l.key == key {
			return slices.Concat(text[:l.start], text[l.end:])
		}
	}
	return text
}

// stripTables removes the tables whose names are in names (with their
// headers, keys and the comments and blank lines inside them) from text.
// Arrays of tables are named "[[name]]".
func stripTables(text []byte, names []string) []byte {
	var out []byte
	for _, l := range scanLines(text) {
		if slices.Contains(names, l.table) {
			continue
		}
		out = append(out, text[l.start:l.end]...)
	}
	return out
}
