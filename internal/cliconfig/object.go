package cliconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Object is a JSON object that remembers its key order and keeps each value
// as the raw bytes it was read as, so that re-encoding it changes nothing
// but what was set or deleted.
type Object struct {
	keys []string
	vals map[string]json.RawMessage
}

// ParseObject parses data as a JSON object. Empty (or all-space) data is an
// empty object, as the docker CLI reads an empty config.json. A duplicated
// key keeps its first position and its last value, as encoding/json does.
func ParseObject(data []byte) (*Object, error) {
	o := &Object{vals: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // inside an object the decoder only yields string keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		o.Set(key, raw)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return o, nil
}

// Get returns the raw value of key.
func (o *Object) Get(key string) (json.RawMessage, bool) {
	v, ok := o.vals[key]
	return v, ok
}

// Set sets key to the raw JSON value v, in place if key exists, else last.
func (o *Object) Set(key string, v json.RawMessage) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

// SetString sets key to the JSON string s.
func (o *Object) SetString(key, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	o.Set(key, b)
}

// String returns the value of key if it is a JSON string.
func (o *Object) String(key string) (string, bool) {
	raw, ok := o.vals[key]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Object returns the value of key parsed as an object: an empty object when
// key is absent or null, an error when it is something else.
func (o *Object) Object(key string) (*Object, error) {
	raw, ok := o.vals[key]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return &Object{vals: map[string]json.RawMessage{}}, nil
	}
	sub, err := ParseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("%q: want a JSON object: %w", key, err)
	}
	return sub, nil
}

// SetObject sets key to sub, or deletes key when sub is empty.
func (o *Object) SetObject(key string, sub *Object) {
	if sub.Len() == 0 {
		o.Delete(key)
		return
	}
	b, _ := sub.MarshalJSON() // raw values are valid JSON already
	o.Set(key, b)
}

// Delete removes key; a missing key is not an error.
func (o *Object) Delete(key string) {
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	o.keys = slices.DeleteFunc(o.keys, func(k string) bool { return k == key })
}

// Len is the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Keys returns the keys in file order.
func (o *Object) Keys() []string { return slices.Clone(o.keys) }

// MarshalJSON encodes the object compactly, keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		if err := json.Compact(&b, o.vals[k]); err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
