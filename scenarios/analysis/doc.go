// Package analysis turns a recorded run into figures and verdicts: latency
// histograms, per-second series, write unavailability charged per fault,
// control-plane cost, noise, and the checker that finds acked-but-lost,
// duplicated and reordered messages.
//
// The runner (package scenarios) records a [Run]: the history of every send
// and receive (package history), the faults as they fired and control-plane
// samples. [Analyze] turns it into a [TopologyResult]; [Check],
// [CheckTable] and [CheckHistory] judge durability alone;
// [ReadHistoryFile] opens a streamed history. [Synthetic] makes runs with
// known answers for tests and sample reports.
//
// Analysis reads a history one shard at a time (history.Source): a table
// in memory is one shard, a streamed file is cut into shards by producer
// and sequence range, so a file of any length is analysed in the memory of
// one shard. Every figure is a sum, a histogram or a per-partition
// minimum; the reorder walk goes down each producer's sequences across
// shards, highest first; samples are the lowest keys of each finding. The
// verdicts are those of the same history in one table.
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
