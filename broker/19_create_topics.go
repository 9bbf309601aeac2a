package broker

// CreateTopics: v0-4
// * Creation goes through the control plane (the controller places
//   replicas); any broker accepts it. TimeoutMillis bounds the wait.
// * NumPartitions/ReplicationFactor -1 take the broker defaults. Explicit
//   ReplicaAssignment is not supported (INVALID_REQUEST).
// * Configs understood: min.insync.replicas, unclean.leader.election.enable
//   and brokerlab.fanout (star|chain); others are rejected with
//   INVALID_CONFIG so a setting never silently does nothing.
// * ValidateOnly checks the request without creating anything.

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/brokerlab/brokerlab/internal/validate"
)

var errInvalidConfig = errors.New("broker: invalid topic config")

func (b *Broker) handleCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	var (
		configs []TopicConfig
		slots   []int
	)
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		t.NumPartitions, t.ReplicationFactor = -1, -1
		cfg, err := b.topicConfig(rt)
		if err != nil {
			t.ErrorCode = errorCode(err)
			if errors.Is(err, errInvalidConfig) {
				t.ErrorCode = kerr.InvalidConfig.Code
			}
			t.ErrorMessage = kmsg.StringPtr(err.Error())
		} else {
			t.NumPartitions, t.ReplicationFactor = cfg.Partitions, cfg.ReplicationFactor
			if !req.ValidateOnly {
				configs = append(configs, cfg)
				slots = append(slots, len(resp.Topics))
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(configs) == 0 {
		return resp
	}
	cctx, cancel := requestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	for i, err := range b.cp.CreateTopics(cctx, configs) {
		if err != nil {
			t := &resp.Topics[slots[i]]
			t.ErrorCode = errorCode(err)
			t.ErrorMessage = kmsg.StringPtr(err.Error())
		}
	}
	return resp
}

func (b *Broker) topicConfig(rt kmsg.CreateTopicsRequestTopic) (TopicConfig, error) {
	if err := validTopicName(rt.Topic); err != nil {
		return TopicConfig{}, err
	}
	if len(rt.ReplicaAssignment) > 0 {
		return TopicConfig{}, fmt.Errorf("%w: explicit replica assignment is not supported", ErrInvalidTopic)
	}
	cfg := TopicConfig{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, MinInsync: 1, Fanout: FanoutStar}
	if cfg.Partitions == -1 {
		cfg.Partitions = b.cfg.DefaultPartitions
	}
	if cfg.ReplicationFactor == -1 {
		cfg.ReplicationFactor = b.cfg.DefaultReplication
	}
	if cfg.Partitions <= 0 || cfg.Partitions > MaxTopicPartitions {
		return TopicConfig{}, fmt.Errorf("%w: %d partitions", ErrInvalidTopic, cfg.Partitions)
	}
	if cfg.ReplicationFactor <= 0 {
		return TopicConfig{}, fmt.Errorf("%w: replication factor %d", ErrNotEnoughBrokers, cfg.ReplicationFactor)
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		v := *c.Value
		switch c.Name {
		case "min.insync.replicas":
			n, err := strconv.ParseInt(v, 10, 16)
			if err != nil || n < 1 {
				return TopicConfig{}, fmt.Errorf("%w: min.insync.replicas=%q", errInvalidConfig, v)
			}
			cfg.MinInsync = int16(n)
		case "unclean.leader.election.enable":
			u, err := strconv.ParseBool(v)
			if err != nil {
				return TopicConfig{}, fmt.Errorf("%w: unclean.leader.election.enable=%q", errInvalidConfig, v)
			}
			cfg.UncleanElection = u
		case "brokerlab.fanout":
			if v != string(FanoutStar) && v != string(FanoutChain) {
				return TopicConfig{}, fmt.Errorf("%w: brokerlab.fanout=%q (star or chain)", errInvalidConfig, v)
			}
			cfg.Fanout = Fanout(v)
		default:
			return TopicConfig{}, fmt.Errorf("%w: %s is not supported", errInvalidConfig, c.Name)
		}
	}
	return cfg, nil
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	if err := validate.TopicName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	return nil
}
