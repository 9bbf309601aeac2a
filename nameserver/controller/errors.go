package controller

import (
	"errors"
	"fmt"
)

// Errors of this package. Errors that cross the wire travel as a code, a
// message and, for ErrNotLeader, the leader's address; the receiving side
// turns them back into these sentinels so errors.Is works on either side.
var (
	// ErrBadFrame: a frame that is oversized, truncated or not a valid
	// message. The connection that sent it is closed.
	ErrBadFrame = errors.New("controller: malformed frame")
	// ErrBadRequest: a well-formed request the controller rejects.
	ErrBadRequest = errors.New("controller: bad request")
	// ErrNotLeader: the controller asked is not the Raft leader; the
	// error's Leader names the one it believes is, when it knows.
	ErrNotLeader = errors.New("controller: not the leader")
	// ErrUnavailable: no controller leader answered, or a proposal was not
	// committed in time (no quorum).
	ErrUnavailable = errors.New("controller: unavailable")
	// ErrFenced: the request names a master or master epoch that is not
	// current (RocketMQ's CONTROLLER_FENCED_MASTER_EPOCH).
	ErrFenced = errors.New("controller: master epoch is stale")
	// ErrStaleSyncStateSet: the SyncStateSet epoch of an alter request is
	// not current (RocketMQ's CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH).
	ErrStaleSyncStateSet = errors.New("controller: sync state set epoch is stale")
	// ErrClosed: the controller or client has been closed.
	ErrClosed = errors.New("controller: closed")
	// ErrInternal: the peer failed for a reason it did not classify.
	ErrInternal = errors.New("controller: internal error")
)

var errorCodes = []struct {
	code string
	err  error
}{
	{"bad-request", ErrBadRequest},
	{"not-leader", ErrNotLeader},
	{"unavailable", ErrUnavailable},
	{"fenced", ErrFenced},
	{"stale-sync-state-set", ErrStaleSyncStateSet},
	{"closed", ErrClosed},
	{"internal", ErrInternal},
}

// wireError is an error as it travels in a reply.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Leader  string `json:"leader,omitempty"`
}

func encodeError(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Code: "internal", Message: err.Error()}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			w.Code = e.code
			break
		}
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		w.Leader = nl.Leader
	}
	return w
}

func decodeError(w *wireError) error {
	if w == nil {
		return nil
	}
	if w.Code == "not-leader" {
		return &NotLeaderError{Leader: w.Leader}
	}
	for _, e := range errorCodes {
		if e.code == w.Code {
			return fmt.Errorf("%w: %s", e.err, w.Message)
		}
	}
	return fmt.Errorf("%w: %s", ErrInternal, w.Message)
}

// NotLeaderError is ErrNotLeader with the address of the controller the
// asked one believes leads ("" when it knows of none).
type NotLeaderError struct{ Leader string }

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return ErrNotLeader.Error() + "; leader " + e.Leader
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
