// Command benchtool is the measuring half of bench/run.sh.
//
//	benchtool measure -project P [-out F] [-err F] -- CMD ARGS...
//	    runs CMD while watching the engine's container events of compose
//	    project P, waits until every container that went down is back
//	    (healthy where it has a healthcheck) and prints one JSON object:
//	    wall time, downtime from the events, and the phases of the downtime.
//	benchtool report -results FILE [-meta key=value]...
//	    reads the JSON lines bench/run.sh collected and prints the markdown
//	    results section of docs/benchmarks.md (medians, ratios, targets).
//
// The downtime is measured from the engine's point of view, not from what
// the tool under test says: first container die/stop event to the last
// container's first "health_status: healthy" (or "start" without a
// healthcheck) after it came back.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool measure|report ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "measure":
		err = runMeasure(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (want measure or report)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}
