package broker

// DeleteTopics: v0-3
// * Deletion goes through the control plane; each broker drops its replicas
//   (and their data directories) when the topic leaves its view.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := req.TopicNames
	if len(names) == 0 {
		return resp
	}
	cctx, cancel := requestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	errs := b.cp.DeleteTopics(cctx, names)
	for i, name := range names {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		if i < len(errs) && errs[i] != nil {
			rt.ErrorCode = errorCode(errs[i])
			rt.ErrorMessage = kmsg.StringPtr(errs[i].Error())
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
