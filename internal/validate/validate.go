// Package validate holds the rules every control plane and the broker apply
// alike, so that a name or an ISR one of them accepts is accepted by all.
// Errors say what is wrong; callers wrap them with their own sentinel
// (broker.ErrInvalidTopic, coordinator.ErrInvalidISR, ...).
//
//	if err := validate.TopicName(name); err != nil {
//		return fmt.Errorf("%w: %w", broker.ErrInvalidTopic, err)
//	}
package validate

import (
	"fmt"
	"slices"
)

// MaxTopicName is Kafka's longest topic name.
const MaxTopicName = 249

// TopicName applies Kafka's rules: 1 to 249 characters of [a-zA-Z0-9._-],
// neither "." nor "..". They also keep a name from escaping a directory, in
// etcd keys and on disk.
func TopicName(name string) error {
	switch {
	case name == "" || len(name) > MaxTopicName:
		return fmt.Errorf("topic name length %d is not in 1..%d", len(name), MaxTopicName)
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has character %q outside [a-zA-Z0-9._-]", name, c)
		}
	}
	return nil
}

// ISR checks a proposed in-sync replica set: not empty, no member twice,
// every member a replica, and the leader a member (leader < 0: no leader,
// no such requirement).
func ISR(isr, replicas []int32, leader int32) error {
	if len(isr) == 0 {
		return fmt.Errorf("empty ISR")
	}
	for i, r := range isr {
		if !slices.Contains(replicas, r) {
			return fmt.Errorf("ISR member %d is not a replica %v", r, replicas)
		}
		if slices.Contains(isr[:i], r) {
			return fmt.Errorf("ISR %v lists %d twice", isr, r)
		}
	}
	if leader >= 0 && !slices.Contains(isr, leader) {
		return fmt.Errorf("ISR %v lacks the leader %d", isr, leader)
	}
	return nil
}
