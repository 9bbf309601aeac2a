package broker

// ApiVersions: v0-2
// * A request at a version above 2 gets a v0 response with UNSUPPORTED_VERSION
//   and the full table, as Kafka does, so the client can retry lower.
// * The table lists only APIs this broker serves (see versions.go);
//   InitProducerId is not among them, so clients produce without idempotence.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleApiVersions(req *kmsg.ApiVersionsRequest) *kmsg.ApiVersionsResponse {
	return b.apiVersionsResponse()
}

func (b *Broker) apiVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	keys := make([]int16, 0, len(apiVersions))
	for k := range apiVersions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := apiVersions[k]
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = k, r.min, r.max
		resp.ApiKeys = append(resp.ApiKeys, v)
	}
	return resp
}
