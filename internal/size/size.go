// Package size formats byte counts for people: decimal units (kB, MB, GB),
// one decimal, as disk tools and the docker CLI print them.
package size

import "fmt"

// Format returns n bytes as "512 B", "1.5 kB", "12.3 MB", ….
func Format(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
