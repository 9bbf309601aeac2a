package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing errors. A connection that produces one is closed.
var (
	ErrFrameTooLarge = errors.New("broker: frame larger than max frame bytes")
	ErrBadFrame      = errors.New("broker: malformed request frame")
)

// readFrame reads one size-prefixed frame into buf (grown as needed) and
// returns the frame body. Frames larger than max are refused before any body
// byte is read, so an oversized length costs no memory.
func readFrame(r io.Reader, buf []byte, max int32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 {
		return nil, fmt.Errorf("%w: negative length %d", ErrBadFrame, n)
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// requestHeader is Kafka's request header v1 or v2.
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

// parseRequestHeader parses the fixed part of the header (v1) and returns the
// rest of the frame. Tagged fields of header v2 are skipped by skipTags once
// the caller knows the request is flexible.
func parseRequestHeader(b []byte) (requestHeader, []byte, error) {
	if len(b) < 10 {
		return requestHeader{}, nil, fmt.Errorf("%w: header needs 10 bytes, have %d", ErrBadFrame, len(b))
	}
	h := requestHeader{
		key:           int16(binary.BigEndian.Uint16(b[0:])),
		version:       int16(binary.BigEndian.Uint16(b[2:])),
		correlationID: int32(binary.BigEndian.Uint32(b[4:])),
	}
	n := int16(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if n > 0 {
		if int(n) > len(b) {
			return requestHeader{}, nil, fmt.Errorf("%w: client id length %d exceeds frame", ErrBadFrame, n)
		}
		h.clientID = string(b[:n])
		b = b[n:]
	} else if n < -1 {
		return requestHeader{}, nil, fmt.Errorf("%w: client id length %d", ErrBadFrame, n)
	}
	return h, b, nil
}

// skipTags skips a tagged-field section (KIP-482).
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad tag count", ErrBadFrame)
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag key", ErrBadFrame)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad tag size", ErrBadFrame)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// appendResponseHeader starts a response frame: a size placeholder, the
// correlation id and, for flexible responses other than ApiVersions, an
// empty tag section. finishFrame fills in the size.
func appendResponseHeader(dst []byte, correlationID int32, flexible bool) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexible {
		dst = append(dst, 0)
	}
	return dst
}

func finishFrame(frame []byte) []byte {
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}
