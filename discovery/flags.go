package discovery

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/nameserver"
)

// Profiles name the timing profiles of shared/DESIGN.md.
const (
	ProfileProduction = "production"
	ProfileFast       = "fast"
)

// FlagConfig is the command-line side of discovery, shared by `brokerlab
// produce` and `brokerlab consume`: exactly one of Bootstrap and NameServers.
type FlagConfig struct {
	Bootstrap   string // comma-separated host:port
	NameServers string // comma-separated host:port
	Profile     string // production or fast
}

// AddFlags binds the settings to fs.
func (f *FlagConfig) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Bootstrap, "bootstrap", f.Bootstrap, "Kafka-style discovery: comma-separated broker host:port list")
	fs.StringVar(&f.NameServers, "nameservers", f.NameServers, "RocketMQ-style discovery: comma-separated name server host:port list")
	if f.Profile == "" {
		f.Profile = ProfileProduction
	}
	fs.StringVar(&f.Profile, "profile", f.Profile, "client timings: production (metadata max age 300s, route poll 30s) or fast (5s, 1s)")
}

// Validate reports the first invalid setting.
func (f FlagConfig) Validate() error {
	switch {
	case (f.Bootstrap == "") == (f.NameServers == ""):
		return errors.New("discovery: give exactly one of --bootstrap and --nameservers")
	case f.Profile != ProfileProduction && f.Profile != ProfileFast:
		return fmt.Errorf("discovery: unknown profile %q (production, fast)", f.Profile)
	}
	return nil
}

// UsesNameServers reports whether the flags select RocketMQ-style discovery.
func (f FlagConfig) UsesNameServers() bool { return f.NameServers != "" }

// Open validates the flags and returns the discovery they describe.
func (f FlagConfig) Open(dial kclient.DialFunc, log *slog.Logger) (Discovery, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.UsesNameServers() {
		cfg := DefaultNameServersConfig()
		if f.Profile == ProfileFast {
			cfg = FastNameServersConfig()
		}
		cfg.NameServers, cfg.Dial, cfg.Logger = splitList(f.NameServers), dial, log
		return NewNameServers(cfg)
	}
	cfg := DefaultBootstrapConfig()
	if f.Profile == ProfileFast {
		cfg.MetadataMaxAge = 5 * time.Second
	}
	cfg.Brokers, cfg.Dial, cfg.Logger = splitList(f.Bootstrap), dial, log
	return NewBootstrap(cfg)
}

// CreateTopic creates topic through d when it does not exist: with
// Bootstrap through a broker, with NameServers through a name server
// (partitions spread over every group with a master). An existing topic is
// left as it is.
func CreateTopic(ctx context.Context, d Discovery, topic string, partitions int32, replication int16) error {
	if _, err := d.Route(ctx, topic); err == nil {
		return nil
	} else if !errors.Is(err, ErrUnknownTopic) {
		return err
	}
	switch d := d.(type) {
	case *Bootstrap:
		return d.CreateTopic(ctx, topic, partitions, replication)
	case *NameServers:
		err := d.CreateTopic(ctx, nameserver.CreateTopicRequest{Config: broker.TopicConfig{
			Name: topic, Partitions: partitions, ReplicationFactor: replication,
		}})
		if errors.Is(err, broker.ErrTopicExists) {
			return nil
		}
		return err
	}
	return fmt.Errorf("discovery: cannot create topics through %T", d)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
