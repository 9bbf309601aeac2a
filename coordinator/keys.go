package coordinator

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/internal/validate"
)

// Key layout under Config.Prefix (see doc.go).
const (
	keyClusterID  = "cluster-id"
	dirBrokers    = "brokers/"
	dirController = "controller/"
	dirTopics     = "topics/"
	dirPartitions = "partitions/"
	dirDeleted    = "deleted-topics/"
)

// keys builds the etcd keys of one cluster.
type keys struct{ prefix string } // prefix ends with "/"

func newKeys(prefix string) keys { return keys{prefix: prefix + "/"} }

func (k keys) root() string                     { return k.prefix }
func (k keys) clusterID() string                { return k.prefix + keyClusterID }
func (k keys) broker(id int32) string           { return k.prefix + dirBrokers + strconv.Itoa(int(id)) }
func (k keys) election() string                 { return k.prefix + "controller" } // concurrency.Election appends "/"
func (k keys) topic(name string) string         { return k.prefix + dirTopics + name }
func (k keys) partitionsOf(topic string) string { return k.prefix + dirPartitions + topic + "/" }
func (k keys) deleted(topic string) string      { return k.prefix + dirDeleted + topic }
func (k keys) partition(topic string, p int32) string {
	return k.partitionsOf(topic) + strconv.Itoa(int(p))
}

// keyKind classifies a key under the prefix.
type keyKind int

const (
	kindUnknown keyKind = iota
	kindClusterID
	kindBroker
	kindCandidate
	kindTopic
	kindPartition
	kindDeleted
)

// parsedKey is a key split into its parts.
type parsedKey struct {
	kind      keyKind
	brokerID  int32
	name      string // topic name, or election key suffix
	partition int32
}

// parse splits a key under the prefix; keys it does not know get kindUnknown
// and an error saying why.
func (k keys) parse(key string) (parsedKey, error) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return parsedKey{}, fmt.Errorf("key %q is outside prefix %q", key, k.prefix)
	}
	switch {
	case rest == keyClusterID:
		return parsedKey{kind: kindClusterID}, nil
	case strings.HasPrefix(rest, dirBrokers):
		id, err := parseID(rest[len(dirBrokers):])
		if err != nil {
			return parsedKey{}, fmt.Errorf("broker key %q: %w", key, err)
		}
		return parsedKey{kind: kindBroker, brokerID: id}, nil
	case strings.HasPrefix(rest, dirController):
		return parsedKey{kind: kindCandidate, name: rest[len(dirController):]}, nil
	case strings.HasPrefix(rest, dirTopics):
		name := rest[len(dirTopics):]
		if err := validate.TopicName(name); err != nil {
			return parsedKey{}, fmt.Errorf("topic key %q: %w", key, err)
		}
		return parsedKey{kind: kindTopic, name: name}, nil
	case strings.HasPrefix(rest, dirDeleted):
		name := rest[len(dirDeleted):]
		if err := validate.TopicName(name); err != nil {
			return parsedKey{}, fmt.Errorf("deleted topic key %q: %w", key, err)
		}
		return parsedKey{kind: kindDeleted, name: name}, nil
	case strings.HasPrefix(rest, dirPartitions):
		tp := rest[len(dirPartitions):]
		i := strings.LastIndexByte(tp, '/')
		if i < 0 {
			return parsedKey{}, fmt.Errorf("partition key %q has no partition number", key)
		}
		name := tp[:i]
		if err := validate.TopicName(name); err != nil {
			return parsedKey{}, fmt.Errorf("partition key %q: %w", key, err)
		}
		p, err := parseID(tp[i+1:])
		if err != nil {
			return parsedKey{}, fmt.Errorf("partition key %q: %w", key, err)
		}
		return parsedKey{kind: kindPartition, name: name, partition: p}, nil
	}
	return parsedKey{}, fmt.Errorf("unknown key %q", key)
}

// parseID parses a non-negative int32 written in canonical decimal.
func parseID(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a non-negative 32-bit decimal", s)
	}
	return int32(n), nil
}
