package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// apiRange is one row of the version table advertised in ApiVersions.
type apiRange struct{ min, max int16 }

// apiVersions is every API this broker serves and the versions it serves.
// Each handler file's header repeats its row and says what is not supported.
// InitProducerId is deliberately absent: clients then produce without a
// producer id (franz-go and librdkafka fall back to non-idempotent writes).
//
// Every maximum is the API's last non-flexible version (before KIP-482
// tagged fields). kmsg's tagged-field reader loops once per declared tag
// even after the input is exhausted, so a 30-byte flexible request can
// declare 2^32 tags and hold a core for seconds (found by FuzzHandle).
// kafka-go, franz-go and librdkafka all work at these versions; raise them
// only once the decoder bounds tag counts by the bytes left.
var apiVersions = map[int16]apiRange{
	int16(kmsg.Produce):              {3, 8},
	int16(kmsg.Fetch):                {4, 11},
	int16(kmsg.ListOffsets):          {1, 5},
	int16(kmsg.Metadata):             {1, 8},
	int16(kmsg.ApiVersions):          {0, 2},
	int16(kmsg.CreateTopics):         {0, 4},
	int16(kmsg.DeleteTopics):         {0, 3},
	int16(kmsg.OffsetForLeaderEpoch): {0, 3},
}

// supported reports whether key is served at version v.
func supported(key, v int16) bool {
	r, ok := apiVersions[key]
	return ok && v >= r.min && v <= r.max
}
