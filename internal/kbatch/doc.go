// Package kbatch reads, checks and builds Kafka v2 record batches (magic 2),
// the unit in which Kafka clients produce, brokers store and consumers fetch.
//
// A broker stores batches as received, so this package never decodes records
// on the hot path: it parses the fixed 61-byte header, checks the length,
// magic byte and CRC-32C, and rewrites the two fields the CRC does not cover
// (base offset and partition leader epoch) in place.
//
// Batch layout (big-endian):
//
//	offset  size  field
//	     0     8  baseOffset
//	     8     4  batchLength           bytes after this field
//	    12     4  partitionLeaderEpoch
//	    16     1  magic                 2
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes 21..end
//	    21     2  attributes            bits 0-2 compression, 3 timestamp type,
//	                                    4 transactional, 5 control
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     -  records (possibly compressed)
//
// Typical use on an append path:
//
//	batches, err := kbatch.Split(buf) // every batch whole, magic 2, CRC ok
//	if err != nil {
//		return err
//	}
//	for _, b := range batches {
//		_ = kbatch.SetBaseOffset(b.Bytes, next) // cannot fail: b is whole
//		next += int64(b.Header.LastOffsetDelta) + 1
//	}
//
// Build makes a valid uncompressed batch for tests and tools, and Records
// decodes one back.
package kbatch
