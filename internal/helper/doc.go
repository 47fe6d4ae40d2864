// Package helper is the code that runs inside helper containers. The
// plugin binary is static, so it is imported as the helper image and run
// there as `/autobackup __helper <command> ...`; nothing has to be pulled
// from a registry. Commands exit 0 on success and print one line on error.
package helper
