// Package iocount counts the bytes that go through a reader or a writer,
// optionally reporting the count now and then: the one byte counter of
// the archive, helper, remote and restore paths.
package iocount

import (
	"io"
	"time"
)

// Reader counts the bytes read through it. With Report set, it calls
// Report with the count so far at most every Every (100 ms when 0); call
// Flush for the final count.
type Reader struct {
	R      io.Reader
	N      int64
	Report func(n int64)
	Every  time.Duration
	last   time.Time
}

func (c *Reader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	if c.Report != nil {
		every := c.Every
		if every == 0 {
			every = 100 * time.Millisecond
		}
		if now := time.Now(); now.Sub(c.last) >= every {
			c.last = now
			c.Report(c.N)
		}
	}
	return n, err
}

// Flush reports the count so far, whatever the time since the last.
func (c *Reader) Flush() {
	if c.Report != nil {
		c.last = time.Now()
		c.Report(c.N)
	}
}

// Writer counts the bytes written through it.
type Writer struct {
	W io.Writer
	N int64
}

func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
