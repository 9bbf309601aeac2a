package broker

import (
	"errors"
	"testing"
)

func TestTopicConfigValidate(t *testing.T) {
	ok := TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3, MinInsync: 2, Fanout: FanoutChain}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*TopicConfig)
	}{
		{"bad name", func(c *TopicConfig) { c.Name = "a/b" }},
		{"no partitions", func(c *TopicConfig) { c.Partitions = 0 }},
		{"too many partitions", func(c *TopicConfig) { c.Partitions = MaxTopicPartitions + 1 }},
		{"no replicas", func(c *TopicConfig) { c.ReplicationFactor = 0 }},
		{"too many replicas", func(c *TopicConfig) { c.ReplicationFactor = MaxTopicReplication + 1; c.MinInsync = 1 }},
		{"min insync above replication", func(c *TopicConfig) { c.MinInsync = 4 }},
		{"negative min insync", func(c *TopicConfig) { c.MinInsync = -1 }},
		{"unknown fanout", func(c *TopicConfig) { c.Fanout = "ring" }},
	} {
		c := ok
		tc.edit(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("%s: got %v, want ErrInvalidTopic", tc.name, err)
		}
	}
}
