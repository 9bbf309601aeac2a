package broker

// Metadata: v1-8
// * Answered from the broker's cached cluster view; any broker answers.
// * An empty or null topic list returns every topic.
// * Unknown topics are created when AutoCreateTopics is on (the response then
//   says LEADER_NOT_AVAILABLE until leaders are known), else
//   UNKNOWN_TOPIC_OR_PARTITION.
// * ControllerID is always a listed broker; OfflineReplicas are replicas
//   whose broker is not live. Topic IDs (v10+) are not served.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleMetadata(ctx context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	v := b.currentView()
	resp := kmsg.NewPtrMetadataResponse()
	resp.ClusterID = kmsg.StringPtr(v.ClusterID)
	for _, br := range v.Brokers {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = br.ID
		mb.Host, mb.Port = splitHostPort(br.Addr)
		if br.Rack != "" {
			mb.Rack = kmsg.StringPtr(br.Rack)
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	resp.ControllerID = v.ControllerID
	if _, ok := v.Broker(v.ControllerID); !ok {
		resp.ControllerID = b.cfg.NodeID
		if len(v.Brokers) > 0 {
			resp.ControllerID = v.Brokers[0].ID
		}
	}
	if req.Topics == nil || (len(req.Topics) == 0 && req.Version < 1) {
		for _, t := range v.Topics {
			resp.Topics = append(resp.Topics, metadataTopic(v, t))
		}
		return resp
	}
	var create []TopicConfig
	for _, rt := range req.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		if t, ok := v.Topic(name); ok {
			resp.Topics = append(resp.Topics, metadataTopic(v, t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr(name)
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if b.cfg.AutoCreateTopics && req.AllowAutoTopicCreation && validTopicName(name) == nil {
			mt.ErrorCode = kerr.LeaderNotAvailable.Code
			create = append(create, b.defaultTopic(name))
		}
		resp.Topics = append(resp.Topics, mt)
	}
	if len(create) > 0 {
		b.autoCreate(ctx, create)
	}
	return resp
}

func metadataTopic(v ClusterView, t TopicView) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Config.Name)
	for _, st := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = st.Partition
		mp.Leader = st.Leader
		mp.LeaderEpoch = st.LeaderEpoch
		mp.Replicas = slices.Clone(st.Replicas)
		mp.ISR = slices.Clone(st.ISR)
		for _, r := range st.Replicas {
			if _, ok := v.Broker(r); !ok {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if mp.OfflineReplicas == nil {
			mp.OfflineReplicas = []int32{}
		}
		if st.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
