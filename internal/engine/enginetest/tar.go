package enginetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// BuildTar makes a tar stream of files, as the engine's copy API sends
// one.
func BuildTar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, fl := range files {
		h := &tar.Header{Name: fl.Name, Typeflag: fl.Type, Mode: fl.Mode, Linkname: fl.Link, ModTime: time.Unix(1700000000, 0)}
		if fl.Type == tar.TypeReg {
			h.Size = int64(len(fl.Content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if fl.Type == tar.TypeReg {
			if _, err := io.WriteString(tw, fl.Content); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadTar lists the entries of a tar stream.
func ReadTar(data []byte) ([]File, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var out []File
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Content: string(content), Link: h.Linkname})
	}
}

// unroot turns a tar whose entries are "v", "v/a", ... into "./", "./a",
// ... and returns the mount point ("/v") they were addressed to.
func unroot(data []byte) (string, []byte, error) {
	files, err := ReadTar(data)
	if err != nil {
		return "", nil, err
	}
	root := ""
	for i, fl := range files {
		first, rest, _ := strings.Cut(strings.TrimSuffix(fl.Name, "/"), "/")
		if root == "" {
			root = first
		} else if first != root {
			return "", nil, fmt.Errorf("entry %q is not under %q", fl.Name, root)
		}
		name := "./" + rest
		if fl.Type == tar.TypeDir && rest != "" {
			name += "/"
		}
		files[i].Name = name
		if fl.Type == tar.TypeLink {
			_, lrest, _ := strings.Cut(fl.Link, "/")
			files[i].Link = "./" + lrest
		}
	}
	out, err := BuildTar(files)
	return "/" + root, out, err
}
