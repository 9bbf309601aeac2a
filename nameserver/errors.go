package nameserver

import (
	"errors"
	"fmt"

	"github.com/brokerlab/brokerlab/broker"
)

// Errors of this package. Errors that cross the wire travel as a code and a
// message (see doc.go) and are turned back into these sentinels, or the
// broker package's control-plane sentinels, on the receiving side, so callers
// test them with errors.Is wherever they were raised.
var (
	// ErrFrameTooLarge: a frame's length prefix exceeds MaxFrameBytes (or is
	// zero). The connection that sent it is closed.
	ErrFrameTooLarge = errors.New("nameserver: frame too large")
	// ErrBadFrame: a frame that is not a valid JSON message. The connection
	// that sent it is closed.
	ErrBadFrame = errors.New("nameserver: malformed frame")
	// ErrBadRequest: a well-formed message whose type or body the receiver
	// rejects (unknown type, missing field, invalid value).
	ErrBadRequest = errors.New("nameserver: bad request")
	// ErrClosed: the connection, client or server has been closed.
	ErrClosed = errors.New("nameserver: closed")
	// ErrNoNameServer: no configured name server answered. It wraps
	// broker.ErrControlPlaneDown.
	ErrNoNameServer = fmt.Errorf("nameserver: no name server answered: %w", broker.ErrControlPlaneDown)
	// ErrNotMaster: an operation only a group's master may perform (AlterISR)
	// was asked of a slave. It wraps broker.ErrFenced.
	ErrNotMaster = fmt.Errorf("nameserver: not the group master: %w", broker.ErrFenced)
	// ErrInternal: the peer failed for a reason it did not classify.
	ErrInternal = errors.New("nameserver: internal error")
)

// errorCodes is the one table between errors and their wire codes; the first
// match wins when encoding.
var errorCodes = []struct {
	code string
	err  error
}{
	{"bad-request", ErrBadRequest},
	{"topic-exists", broker.ErrTopicExists},
	{"unknown-topic", broker.ErrUnknownTopic},
	{"invalid-topic", broker.ErrInvalidTopic},
	{"not-enough-brokers", broker.ErrNotEnoughBrokers},
	{"unavailable", broker.ErrControlPlaneDown},
	{"fenced", broker.ErrFenced},
	{"closed", ErrClosed},
	{"internal", ErrInternal},
}

// wireError is an error as it travels in a reply.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// encodeError turns err into its wire form; nil stays nil.
func encodeError(err error) *wireError {
	if err == nil {
		return nil
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return &wireError{Code: e.code, Message: err.Error()}
		}
	}
	return &wireError{Code: "internal", Message: err.Error()}
}

// decodeError turns a wire error back into an error that matches the
// sentinel of its code with errors.Is and keeps the peer's message.
func decodeError(w *wireError) error {
	if w == nil {
		return nil
	}
	for _, e := range errorCodes {
		if e.code == w.Code {
			return &remoteError{msg: w.Message, err: e.err}
		}
	}
	return &remoteError{msg: w.Message, err: ErrInternal}
}

// remoteError is an error raised by the peer.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string {
	if e.msg == "" {
		return e.err.Error()
	}
	return e.msg
}

func (e *remoteError) Unwrap() error { return e.err }
