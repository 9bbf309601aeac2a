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
// # Example
//
//	rec := history.NewRecorder(start) // or NewFileRecorder(path, start)
//	go producer.Run(ctx, rec.Send)
//	go consumer.Run(ctx, rec.Receive)
//	...
//	table, err := rec.Finish(meta)
//	for key, m := range table.Messages() { ... }
package history
