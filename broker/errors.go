package broker

import (
	"context"
	"errors"

	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/internal/kbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Broker-side errors of the data plane, mapped to Kafka codes by errorCode.
var (
	ErrNotLeader          = errors.New("broker: not the leader for the partition")
	ErrUnknownPartition   = errors.New("broker: unknown topic or partition")
	ErrNotEnoughReplicas  = errors.New("broker: in-sync replicas fewer than min.insync.replicas")
	ErrNotEnoughAfter     = errors.New("broker: in-sync replicas shrank below min.insync.replicas after append")
	ErrRequestTimedOut    = errors.New("broker: request timed out")
	ErrUnknownLeaderEpoch = errors.New("broker: leader epoch newer than this replica's")
	ErrLeaderNotAvailable = errors.New("broker: partition has no leader")
	ErrShuttingDown       = errors.New("broker: shutting down")
)

// errorTable maps internal errors to Kafka error codes; first match wins.
var errorTable = []struct {
	err  error
	code *kerr.Error
}{
	{ErrNotLeader, kerr.NotLeaderForPartition},
	{ErrUnknownPartition, kerr.UnknownTopicOrPartition},
	{ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{ErrNotEnoughAfter, kerr.NotEnoughReplicasAfterAppend},
	{ErrRequestTimedOut, kerr.RequestTimedOut},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{ErrFenced, kerr.FencedLeaderEpoch},
	{ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{ErrLeaderNotAvailable, kerr.LeaderNotAvailable},
	{ErrShuttingDown, kerr.NotLeaderForPartition},
	{errInvalidAcks, kerr.InvalidRequiredAcks},
	{ErrTopicExists, kerr.TopicAlreadyExists},
	{ErrInvalidTopic, kerr.InvalidTopicException},
	{ErrNotEnoughBrokers, kerr.InvalidReplicationFactor},
	{ErrNotController, kerr.NotController},
	{ErrPolicyViolation, kerr.PolicyViolation},
	{ErrControlPlaneDown, kerr.RequestTimedOut},
	{ErrStaleState, kerr.RequestTimedOut},
	{kbatch.ErrBadMagic, kerr.UnsupportedForMessageFormat},
	{kbatch.ErrBadCRC, kerr.CorruptMessage},
	{kbatch.ErrTruncated, kerr.CorruptMessage},
	{storage.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{storage.ErrCorruptBatch, kerr.CorruptMessage},
	{storage.ErrEpochRegression, kerr.NotLeaderForPartition},
}

// errorCode returns the Kafka error code for err (0 for nil).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

var errInvalidAcks = errors.New("broker: acks must be 0, 1 or -1")
