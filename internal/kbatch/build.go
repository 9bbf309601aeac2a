package kbatch

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RecordHeader is one record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one record of a batch, with its timestamp in milliseconds.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
	Timestamp int64
	// Offset is the record's absolute offset; only Records fills it in.
	Offset int64
}

// BuildOptions sets the batch-level fields Build writes.
type BuildOptions struct {
	BaseOffset  int64
	LeaderEpoch int32
	// Idempotent writes ProducerID, ProducerEpoch and BaseSequence; otherwise
	// all three are -1 as a plain producer sends them.
	Idempotent    bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
}

// Build encodes records as one valid, uncompressed v2 batch. An empty
// records slice is an error: Kafka batches hold at least one record.
func Build(records []Record, opts BuildOptions) ([]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: a batch needs at least one record", ErrBadHeader)
	}
	base := records[0].Timestamp
	maxTS := base
	var body []byte
	for i, r := range records {
		maxTS = max(maxTS, r.Timestamp)
		body = appendRecord(body, r, int32(i), r.Timestamp-base)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          opts.BaseOffset,
		Length:               int32(HeaderSize - LengthOverhead + len(body)),
		PartitionLeaderEpoch: opts.LeaderEpoch,
		Magic:                Magic,
		LastOffsetDelta:      int32(len(records) - 1),
		FirstTimestamp:       base,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(records)),
		Records:              body,
	}
	if opts.Idempotent {
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	}
	if opts.Transactional {
		rb.Attributes |= AttrTransactional
	}
	out := rb.AppendTo(make([]byte, 0, HeaderSize+len(body)))
	sum, err := CRC(out)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(out[offCRC:], sum)
	return out, nil
}

func appendRecord(dst []byte, r Record, offsetDelta int32, tsDelta int64) []byte {
	kr := kmsg.Record{
		TimestampDelta64: tsDelta,
		OffsetDelta:      offsetDelta,
		Key:              r.Key,
		Value:            r.Value,
	}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
	}
	// Encode with a zero length (one varint byte), then prefix the real one.
	enc := kr.AppendTo(nil)[1:]
	dst = binary.AppendVarint(dst, int64(len(enc)))
	return append(dst, enc...)
}

// Records decodes the records of one uncompressed batch (as returned by Next
// or Split). Key, Value and header values alias batch.
func Records(batch []byte) ([]Record, error) {
	b, rest, err := Next(batch)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the batch", ErrBadLength, len(rest))
	}
	h := b.Header
	if h.Compression() != 0 {
		return nil, fmt.Errorf("%w: codec %d", ErrCompressed, h.Compression())
	}
	src := b.Bytes[HeaderSize:]
	// Every record takes at least 7 bytes; cap the preallocation by that.
	out := make([]Record, 0, min(int(h.RecordCount), len(src)/7+1))
	for i := int32(0); i < h.RecordCount; i++ {
		r, n, err := readRecord(src)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		r.Timestamp += h.BaseTimestamp
		r.Offset += h.BaseOffset
		out = append(out, r)
		src = src[n:]
	}
	if len(src) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after record %d", ErrBadRecord, len(src), h.RecordCount)
	}
	return out, nil
}

// readRecord decodes one length-prefixed record; Timestamp and Offset are
// still deltas.
func readRecord(src []byte) (Record, int, error) {
	l, n := binary.Varint(src)
	if n <= 0 || l < 0 || l > int64(len(src)-n) {
		return Record{}, 0, fmt.Errorf("%w: bad length", ErrBadRecord)
	}
	var kr kmsg.Record
	if err := kr.ReadFrom(src[:n+int(l)]); err != nil {
		return Record{}, 0, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	r := Record{Key: kr.Key, Value: kr.Value, Timestamp: kr.TimestampDelta64, Offset: int64(kr.OffsetDelta)}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r, n + int(l), nil
}
