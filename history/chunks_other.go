//go:build !unix

package history

func allocChunk() []Message { return make([]Message, chunkSize) }

func freeChunk([]Message, bool) {}

const offHeap = false
