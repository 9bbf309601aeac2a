package producer

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
)

// Style selects how partitions are chosen and where retries go.
type Style string

const (
	// StyleKafka: round-robin over all partitions of the topic (key hash
	// with Keys); a failed batch is retried on the same partition after a
	// route refresh and RetryBackoff, so order within a partition holds.
	StyleKafka Style = "kafka"
	// StyleRocketMQ: round-robin over the partitions of groups with a
	// master that fault avoidance does not reject; a failed batch is sent
	// again at once to a partition of another group, as RocketMQ's
	// producer does (order within a partition is not kept across retries),
	// and queued messages of a partition whose group became unusable move
	// to one that is usable.
	StyleRocketMQ Style = "rocketmq"
)

// RetryOrder says how the style retries and what order within a partition
// it promises, in one line ("ordered: ..." or "unordered: ...").
func (s Style) RetryOrder() string {
	if s == StyleRocketMQ {
		return "unordered: a failed batch is sent again to another group's queue, behind newer messages there; messages never moved keep their order"
	}
	return "ordered: one request in flight per partition, a failed batch retried on its partition before any later one"
}

// maxMessageSize bounds MessageSize (Kafka's max.request.size is 1 MiB; the
// broker's frame limit is larger).
const maxMessageSize = 16 << 20

// Config configures a producer. DefaultConfig gives a Kafka client's
// defaults, DefaultRocketMQConfig a RocketMQ client's.
type Config struct {
	// Discovery finds partition leaders; required. The producer does not
	// close it.
	Discovery discovery.Discovery `yaml:"-" json:"-"`
	// Topic to write; required.
	Topic string `yaml:"topic" json:"topic"`
	// ProducerID goes into every message's bl-producer header and every
	// Send record.
	ProducerID int32 `yaml:"producer_id" json:"producer_id"`
	// Name identifies the producer in route Changes; empty means
	// "producer-<ProducerID>".
	Name string `yaml:"name" json:"name"`

	// Rate is the open-loop schedule in messages per second: message i is
	// due at start + i/Rate and is enqueued then whatever happened to
	// earlier ones. 0 runs closed-loop: a new message as soon as fewer
	// than Window are outstanding.
	Rate float64 `yaml:"rate" json:"rate"`
	// Window bounds outstanding messages in closed-loop mode (Rate 0).
	Window int `yaml:"window" json:"window"`
	// Count stops the schedule after this many messages; 0 runs until the
	// context of Run ends.
	Count int64 `yaml:"count" json:"count"`
	// MessageSize is the value size in bytes (headers and key excluded).
	MessageSize int `yaml:"message_size" json:"message_size"`
	// Keys gives message i the key "<ProducerID>-<i mod 1024>" and picks
	// its partition by murmur2 hash of the key, as Kafka's default
	// partitioner does.
	Keys bool `yaml:"keys" json:"keys"`

	// BatchSize is the most messages in one produce request, and
	// BatchBytes the most value bytes (max.request.size: 1 MiB).
	BatchSize  int `yaml:"batch_size" json:"batch_size"`
	BatchBytes int `yaml:"batch_bytes" json:"batch_bytes"`
	// Linger is how long a partition waits for a batch to fill, counted
	// from its oldest queued message (linger.ms: 5 ms since Kafka 4.0).
	Linger time.Duration `yaml:"linger" json:"linger"`
	// Acks: 0 (no response; every message is recorded Acked with Offset
	// -1, since nothing more is ever known), 1 (leader) or -1 (all
	// in-sync replicas).
	Acks int16 `yaml:"acks" json:"acks"`
	// Retries is how many times a failed batch is sent again.
	Retries int `yaml:"retries" json:"retries"`
	// RetryBackoff is the pause before a retry (retry.backoff.ms). The
	// RocketMQ style retries at once on another group.
	RetryBackoff time.Duration `yaml:"retry_backoff" json:"retry_backoff"`
	// RequestTimeout bounds one produce request, and is the broker's
	// acks=all wait (request.timeout.ms; RocketMQ sendMsgTimeout 3 s).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// DeliveryTimeout bounds a message's whole life from enqueue, retries
	// included (delivery.timeout.ms); 0 leaves only Retries.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout" json:"delivery_timeout"`
	// DrainTimeout is how long, after the context of Run ends, queued
	// and in-flight messages may still complete; then every message left
	// is recorded Unknown. 0 stops at once.
	DrainTimeout time.Duration `yaml:"drain_timeout" json:"drain_timeout"`
	// Compression codec of every batch: 0 none, or kafka.Gzip, Snappy,
	// Lz4, Zstd.
	Compression kafka.Compression `yaml:"-" json:"-"`
	// Style selects partitioning and retries (StyleKafka by default).
	Style Style `yaml:"style" json:"style"`

	// OnRoute, when set, is called when a partition's requests go to a new
	// address (and on its first request), with the time the request was
	// handed to the network. Called from partition goroutines,
	// concurrently; it must return quickly.
	OnRoute func(discovery.Change) `yaml:"-" json:"-"`
	// Dial opens broker connections; nil uses net.Dialer. Tests pass
	// faultnet's dialer.
	Dial kclient.DialFunc `yaml:"-" json:"-"`
	// Logger receives the producer's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultConfig returns a Kafka producer's defaults (acks=all, unbounded
// retries within a 120 s delivery timeout); Discovery and Topic are still to
// be set.
func DefaultConfig() Config {
	return Config{
		Rate:            1000,
		Window:          10000,
		MessageSize:     1024,
		BatchSize:       1000,
		BatchBytes:      1 << 20,
		Linger:          5 * time.Millisecond,
		Acks:            -1,
		Retries:         math.MaxInt32,
		RetryBackoff:    100 * time.Millisecond,
		RequestTimeout:  30 * time.Second,
		DeliveryTimeout: 120 * time.Second,
		Style:           StyleKafka,
	}
}

// DefaultRocketMQConfig returns a RocketMQ producer's defaults: two retries
// on other groups at once, 3 s send timeout, RocketMQ style.
func DefaultRocketMQConfig() Config {
	c := DefaultConfig()
	c.Retries = 2
	c.RetryBackoff = 0
	c.RequestTimeout = 3 * time.Second
	c.DeliveryTimeout = 0
	c.Style = StyleRocketMQ
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Discovery == nil:
		return errors.New("producer: discovery is required")
	case c.Topic == "":
		return errors.New("producer: topic is required")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("producer: rate %v must be a finite number >= 0", c.Rate)
	case c.Rate == 0 && c.Window <= 0:
		return errors.New("producer: closed-loop runs (rate 0) need a positive window")
	case c.Count < 0:
		return errors.New("producer: count must be >= 0")
	case c.MessageSize < 0 || c.MessageSize > maxMessageSize:
		return fmt.Errorf("producer: message size %d is outside 0..%d", c.MessageSize, maxMessageSize)
	case c.BatchSize <= 0:
		return errors.New("producer: batch size must be positive")
	case c.BatchBytes <= 0:
		return errors.New("producer: batch bytes must be positive")
	case c.Linger < 0:
		return errors.New("producer: linger must be >= 0")
	case c.Acks != 0 && c.Acks != 1 && c.Acks != -1:
		return fmt.Errorf("producer: acks %d must be 0, 1 or -1", c.Acks)
	case c.Retries < 0:
		return errors.New("producer: retries must be >= 0")
	case c.RetryBackoff < 0:
		return errors.New("producer: retry backoff must be >= 0")
	case c.RequestTimeout <= 0:
		return errors.New("producer: request timeout must be positive")
	case c.DeliveryTimeout < 0:
		return errors.New("producer: delivery timeout must be >= 0")
	case c.DrainTimeout < 0:
		return errors.New("producer: drain timeout must be >= 0")
	case c.Compression < 0 || c.Compression > kafka.Zstd:
		return fmt.Errorf("producer: unknown compression codec %d", c.Compression)
	}
	switch c.Style {
	case StyleKafka, StyleRocketMQ, "":
	default:
		return fmt.Errorf("producer: unknown style %q (kafka, rocketmq)", c.Style)
	}
	return nil
}
