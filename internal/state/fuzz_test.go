package state

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzLoad checks that no input makes Load panic, and that whatever Load
// accepts is written by Save in a form Load reads back to the same file.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(validFile))
	f.Add([]byte(sampleGolden))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse(FileName, data)
		if err != nil {
			if file != nil {
				t.Fatalf("parse returned a file and an error: %v", err)
			}
			return
		}
		saved, err := encode(file)
		if err != nil {
			t.Fatalf("Save refused what Load accepted: %v\ninput:\n%s", err, data)
		}
		again, err := parse(FileName, saved)
		if err != nil {
			t.Fatalf("Load of what Save wrote: %v\nsaved:\n%s", err, saved)
		}
		resaved, err := encode(again)
		if err != nil {
			t.Fatalf("second Save: %v", err)
		}
		if !bytes.Equal(saved, resaved) {
			t.Fatalf("Save→Load→Save changed the file:\nfirst:\n%s\nsecond:\n%s", saved, resaved)
		}
	})
}

// encode is the whole of f in one document, as Save wrote it before the
// history had a file of its own (and as old files still look).
func encode(f *File) ([]byte, error) {
	out := f.normalized()
	if errs := out.validate(); len(errs) > 0 {
		return nil, errors.New(errs[0].msg)
	}
	return out.marshalWith(fileHeader)
}
