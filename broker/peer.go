package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// peerConn is a minimal Kafka client connection used between brokers:
// one request at a time, kmsg for the bodies.
type peerConn struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	addr     string
	clientID string
	maxFrame int32

	conn net.Conn
	corr int32
	buf  []byte
}

func (c *peerConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// request sends req at version and reads its response. Any error closes the
// connection; the next request redials.
func (c *peerConn) request(ctx context.Context, req kmsg.Request, version int16) (kmsg.Response, error) {
	if c.conn == nil {
		conn, err := c.dial(ctx, "tcp", c.addr)
		if err != nil {
			return nil, err
		}
		c.conn = conn
	}
	conn := c.conn
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	} else {
		_ = conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	req.SetVersion(version)
	c.corr++
	out := c.buf[:0]
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint16(out, uint16(req.Key()))
	out = binary.BigEndian.AppendUint16(out, uint16(version))
	out = binary.BigEndian.AppendUint32(out, uint32(c.corr))
	out = binary.BigEndian.AppendUint16(out, uint16(len(c.clientID)))
	out = append(out, c.clientID...)
	if req.IsFlexible() {
		out = append(out, 0)
	}
	out = req.AppendTo(out)
	out = finishFrame(out)
	if _, err := c.conn.Write(out); err != nil {
		c.close()
		return nil, err
	}
	c.buf = out[:0]
	// A fresh buffer per response: kmsg byte fields (record batches) alias it.
	frame, err := readFrame(c.conn, nil, c.maxFrame)
	if err != nil {
		c.close()
		return nil, err
	}
	if len(frame) < 4 || int32(binary.BigEndian.Uint32(frame)) != c.corr {
		c.close()
		return nil, fmt.Errorf("%w: response correlation id mismatch", ErrBadFrame)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		if body, err = skipTags(body); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		c.close()
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return resp, nil
}

// splitHostPort splits a host:port into Metadata's host and port fields.
func splitHostPort(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

type netDialer struct{ net.Dialer }
