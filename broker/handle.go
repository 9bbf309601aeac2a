package broker

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handle decodes one request frame, runs its handler and returns the encoded
// response frame (nil when the request wants none). An error means the
// connection must be closed: the frame could not be understood.
func (b *Broker) handle(frame []byte, out []byte) (resp []byte, err error) {
	defer func() {
		// No input may crash the broker. A panic here is a bug; the
		// connection is closed and the bug logged.
		if r := recover(); r != nil {
			b.stats.panics.Add(1)
			b.logger.Error("request handler panic", "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: handler panic: %v", ErrBadFrame, r)
		}
	}()
	b.stats.requests.Add(1)
	b.stats.bytesIn.Add(int64(len(frame)) + 4)
	h, body, err := parseRequestHeader(frame)
	if err != nil {
		return nil, err
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return nil, fmt.Errorf("%w: unknown api key %d", ErrBadFrame, h.key)
	}
	if !supported(h.key, h.version) {
		return b.unsupportedVersion(h, req, out)
	}
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", ErrBadFrame, kmsg.NameForKey(h.key), h.version, err)
	}
	b.reqs.countRequest(h.key)
	ctx := b.ctx
	start := time.Now()
	var r kmsg.Response
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		r = b.handleProduce(ctx, req)
		if req.Acks == 0 {
			b.lat.observe(req, time.Since(start))
			b.reqs.countErrors(h.key, r)
			return nil, nil
		}
	case *kmsg.FetchRequest:
		r = b.handleFetch(ctx, req)
	case *kmsg.ListOffsetsRequest:
		r = b.handleListOffsets(req)
	case *kmsg.MetadataRequest:
		r = b.handleMetadata(ctx, req)
	case *kmsg.ApiVersionsRequest:
		r = b.handleApiVersions(req)
	case *kmsg.CreateTopicsRequest:
		r = b.handleCreateTopics(ctx, req)
	case *kmsg.DeleteTopicsRequest:
		r = b.handleDeleteTopics(ctx, req)
	case *kmsg.OffsetForLeaderEpochRequest:
		r = b.handleOffsetForLeaderEpoch(req)
	default:
		return nil, fmt.Errorf("%w: api %s has no handler", ErrBadFrame, kmsg.NameForKey(h.key))
	}
	b.lat.observe(req, time.Since(start))
	b.reqs.countErrors(h.key, r)
	return encodeResponse(out, h, r), nil
}

// encodeResponse frames a response. ApiVersions always uses header v0.
func encodeResponse(out []byte, h requestHeader, r kmsg.Response) []byte {
	r.SetVersion(h.version)
	flexible := r.IsFlexible() && h.key != int16(kmsg.ApiVersions)
	out = appendResponseHeader(out, h.correlationID, flexible)
	out = r.AppendTo(out)
	return finishFrame(out)
}

// unsupportedVersion answers a request at a version this broker does not
// serve. ApiVersions gets a v0 body with UNSUPPORTED_VERSION and the full
// table, so the client can pick a version; other APIs get Kafka's behaviour
// (the connection is closed), as no response version is agreed.
func (b *Broker) unsupportedVersion(h requestHeader, req kmsg.Request, out []byte) ([]byte, error) {
	if h.key != int16(kmsg.ApiVersions) {
		return nil, fmt.Errorf("%w: %s v%d is not supported (served: v%d-v%d)", ErrBadFrame,
			kmsg.NameForKey(h.key), h.version, apiVersions[h.key].min, apiVersions[h.key].max)
	}
	r := b.apiVersionsResponse()
	r.ErrorCode = kerr.UnsupportedVersion.Code
	h.version = 0
	return encodeResponse(out, h, r), nil
}

// requestTimeout bounds a handler by the client's timeout, within limits.
func requestTimeout(ctx context.Context, ms int32) (context.Context, context.CancelFunc) {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, min(d, 5*time.Minute))
}
