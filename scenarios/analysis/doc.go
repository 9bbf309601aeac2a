// Package analysis turns a recorded run into figures and verdicts: latency
// histograms, per-second series, write unavailability charged per fault,
// control-plane cost, noise, and the checker that finds acked-but-lost,
// duplicated and reordered messages.
//
// The runner (package scenarios) records a [Run]: the history of every send
// and receive (package history), the faults as they fired and control-plane
// samples. [Analyze] turns it into a [TopologyResult]; [Check] and
// [CheckTable] judge durability alone; [ReadHistoryFile] reads a streamed
// history back. [Synthetic] makes runs with known answers for tests and
// sample reports.
//
// Times in a Run are wall-clock times; fault times in a scenario are offsets
// from the run start (t=0 of the open-loop schedule). Latency and rate
// figures cover messages intended after the warm-up; the checker covers
// every message.
//
// The checker judges durability on a verification read: after the drain a
// fresh consumer reads every partition from offset 0 until the high
// watermark it is served covers every offset an ack reported. A partition it
// cannot read that far (no reader, errors, a restarted leader whose high
// watermark has not caught up) is reported in
// [CheckResult.UnreadablePartitions] with how long the read tried, and the
// acknowledged messages it did not reach count as Unreadable, not Lost.
package analysis
