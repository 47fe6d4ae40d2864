// Package atomicfile writes files so that readers never see half of one:
// the data goes to an exclusively created temporary file in the same
// directory, is fsynced, and is renamed over the destination; the directory
// is fsynced afterwards so the rename survives a crash.
package atomicfile
