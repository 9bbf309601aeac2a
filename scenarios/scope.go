package scenarios

// Placer is implemented by a Deployment that knows where the topic's
// partitions live. The runner asks it just before each fault, so that the
// analysis can charge a partition's write gap only to a fault that could
// have caused it (see faultScope). A Deployment without it leaves every
// fault able to affect every partition.
type Placer interface {
	// Placement maps every broker node, named as Apply resolves it
	// ("broker 2"), to the partitions of the scenario's topic it leads or
	// replicates now. A broker with no partition maps to an empty slice.
	Placement() map[string][]int32
}

// RetryReporter is implemented by a Producer that can say how it retries
// and what order it promises within a partition, so that a result says
// which behaviour its figures come from (TopologyResult.ProducerRetries).
type RetryReporter interface {
	// RetryOrder is one line: "ordered: ..." or "unordered: ...".
	RetryOrder() string
}
