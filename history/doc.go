// Package history is the record a workload leaves behind and the compact
// form the checker and the analysis read.
//
// Producers and consumers of every topology (brokerlab's own, JetStream, an
// external Kafka cluster) report events: a Send per message with its
// intended time and outcome, a Receive per delivery with the header fields
// it carried (HeaderProducer, HeaderSeq, HeaderIntended). Events are passed
// by value and not kept: a Recorder turns them into a Table in memory or
// streams them to a file.
//
// # Table
//
// A Table holds one fixed-size Message (MessageSize = 72 bytes) per
// (producer, sequence): the send's partition, offset, outcome, attempts and
// three timestamps, the earliest live delivery, and the first position of
// the live and of the verification read. Times are int64 nanoseconds after
// the table's start. Producers number messages from 0, so a producer's
// messages sit in dense chunks of 4096 indexed by sequence: no per-message
// key, map entry, string or allocation, and a delivery costs nothing beyond
// its message's slot. What is rare lives in side maps: a second position of
// a message (a duplicate) and messages with a sequence far outside the dense
// range (a foreign message). Chunks are mapped outside the Go heap where the
// platform allows, so a large history does not raise the collector's heap
// goal; Release frees them at once.
//
// # File format
//
// A streamed history is a header and a sequence of records, all integers
// little-endian, times int64 nanoseconds after the header's start (NoTime,
// the minimum int64, when absent):
//
//	header   "BLHIST" 0x00 0x01 (magic, last byte the version) | start int64 (Unix ns)
//	record   kind uint8 | body
//	kind 1   send     producer int32 | partition int32 | seq int64 | offset int64 |
//	                  intended int64 | sent int64 | done int64 | outcome uint8 | attempts uint8  (50 bytes)
//	kind 2   receive  producer int32 | partition int32 | seq int64 | offset int64 | received int64  (32 bytes)
//	kind 3   final    producer int32 | partition int32 | seq int64 | offset int64  (24 bytes)
//	kind 4   the verification read begins (no body)
//	kind 5   the verification read did not finish: forget its records (no body)
//	kind 6   meta     length uint32 (at most MaxMeta) | bytes (the runner's run description, JSON)
//
// Records are appended in arrival order; Read replays them into a Table.
// A file that ends inside a record (a run cut short) reads as ErrTruncated
// with everything before the cut; anything else malformed is ErrFormat.
// About 109 bytes per message on disk (a send, a live receive and a
// verification read).
//
// # Checking a file in bounded memory
//
// A Source is what the analysis reads: the whole history's figures
// (HasFinal, Receives, Last, AckedEnds) and its messages one shard at a
// time, highest (producer, sequence) range first. A Table is a source of
// one shard. SplitFile reads a file once and appends each record to the
// shard file of its producer and sequence range (2^DefaultShardBits = 524,288
// sequences of one producer, at most 36 MiB as a table) in a new directory
// next to it, through buffers of at most 32 MiB in all; verification-read
// begin and drop records go to every shard seen so far, which holds every
// record they concern. Split.Shards then reads one shard file into a table
// at a time. Every record of a message lands in its shard in file order,
// so each message's slot is what Read would make of it, and a checker that
// sums, takes minimums per partition and carries the reorder walk from
// one shard to the next gives the verdicts of the whole table in the
// memory of one shard. The shard files are as large as the history file
// together and are removed by Release.
//
// # Example
//
//	rec := history.NewRecorder(start) // or NewFileRecorder(path, start)
//	go producer.Run(ctx, rec.Send)
//	go consumer.Run(ctx, rec.Receive)
//	...
//	src, err := rec.Finish(meta) // a *Table, or a *Split in file mode
//	defer src.Release()
//	for t, err := range src.Shards() {
//		for key, m := range t.Messages() { ... }
//	}
package history
