package plugin

import (
	"fmt"
)

// localOnlyError is what run and push return when an upload failed.
func localOnlyError(err error) error {
	return exitCodeErr{code: ExitFailed, err: fmt.Errorf("%w\nThe backup is safe on this host. The next run uploads it, or now: docker autobackup push", err)}
}
