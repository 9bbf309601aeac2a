package kbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Field positions and sizes of the v2 batch header.
const (
	// HeaderSize is the size of the fixed batch header; records follow it.
	HeaderSize = 61
	// Magic is the only batch format version this package accepts.
	Magic = 2

	// LengthOverhead is the number of bytes before and including the
	// batchLength field, which batchLength does not count.
	LengthOverhead = 12
	// minBatchLength is the smallest valid batchLength: the header after it.
	minBatchLength = HeaderSize - LengthOverhead

	offLeaderEpoch = 12
	offMagic       = 16
	offCRC         = 17
	offAttributes  = 21
)

// Errors returned by the parsers, wrapped with the position at fault.
var (
	ErrTruncated = errors.New("kbatch: truncated record batch")
	ErrBadLength = errors.New("kbatch: invalid record batch length")
	ErrBadMagic  = errors.New("kbatch: unsupported record batch magic (want 2)")
	ErrBadCRC    = errors.New("kbatch: record batch crc mismatch")
	ErrBadHeader = errors.New("kbatch: invalid record batch header")
	ErrBadRecord = errors.New("kbatch: invalid record")
	// ErrCompressed is returned by Records for a compressed batch.
	ErrCompressed = errors.New("kbatch: batch is compressed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
)

// Header is the fixed part of a v2 record batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after the BatchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64 // ms
	MaxTimestamp         int64 // ms
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the whole batch's size in bytes.
func (h Header) Size() int { return LengthOverhead + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h Header) Compression() int { return int(h.Attributes & AttrCompressionMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch holds control records (commit/abort markers).
func (h Header) Control() bool { return h.Attributes&AttrControl != 0 }

// ParseHeader decodes the header at the start of b and checks the magic byte,
// the length field and lastOffsetDelta. It does not check that the whole batch
// is present or its CRC; Next does.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), HeaderSize)
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[0:])),
		BatchLength:          int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  be.Uint32(b[17:]),
		Attributes:           int16(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		BaseTimestamp:        int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		RecordCount:          int32(be.Uint32(b[57:])),
	}
	switch {
	case h.Magic != Magic:
		return h, fmt.Errorf("%w: magic %d", ErrBadMagic, h.Magic)
	case h.BatchLength < minBatchLength:
		return h, fmt.Errorf("%w: %d is below %d", ErrBadLength, h.BatchLength, minBatchLength)
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: negative last offset delta %d", ErrBadHeader, h.LastOffsetDelta)
	case h.RecordCount < 0:
		return h, fmt.Errorf("%w: negative record count %d", ErrBadHeader, h.RecordCount)
	}
	return h, nil
}

// Batch is one record batch inside a larger buffer.
type Batch struct {
	Header Header
	// Bytes is the whole batch, header included; it aliases the parsed buffer.
	Bytes []byte
}

// Next parses and checks the first batch in b (header, whole length present,
// CRC) and returns it with the bytes that follow.
func Next(b []byte) (Batch, []byte, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Batch{}, b, err
	}
	size := h.Size()
	if size > len(b) {
		return Batch{}, b, fmt.Errorf("%w: batch needs %d bytes, %d present", ErrTruncated, size, len(b))
	}
	if sum := crc32.Checksum(b[offAttributes:size], castagnoli); sum != h.CRC {
		return Batch{}, b, fmt.Errorf("%w: stored %08x, computed %08x", ErrBadCRC, h.CRC, sum)
	}
	return Batch{Header: h, Bytes: b[:size:size]}, b[size:], nil
}

// Split checks that b is a sequence of whole, valid batches and returns them
// in order. An empty b gives no batches and no error.
func Split(b []byte) ([]Batch, error) {
	var out []Batch
	pos := 0
	for len(b) > 0 {
		batch, rest, err := Next(b)
		if err != nil {
			return nil, fmt.Errorf("batch %d at byte %d: %w", len(out), pos, err)
		}
		out = append(out, batch)
		pos += len(batch.Bytes)
		b = rest
	}
	return out, nil
}

// SetBaseOffset rewrites the base offset of the batch at the start of b in
// place. The CRC does not cover it.
func SetBaseOffset(b []byte, off int64) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes", ErrTruncated, len(b))
	}
	binary.BigEndian.PutUint64(b[0:], uint64(off))
	return nil
}

// SetLeaderEpoch rewrites the partition leader epoch of the batch at the
// start of b in place. The CRC does not cover it.
func SetLeaderEpoch(b []byte, epoch int32) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes", ErrTruncated, len(b))
	}
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
	return nil
}

// CRC computes the CRC-32C a batch should carry (over attributes..end).
func CRC(batch []byte) (uint32, error) {
	if len(batch) < HeaderSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrTruncated, len(batch))
	}
	return crc32.Checksum(batch[offAttributes:], castagnoli), nil
}
