//go:build unix

package history

import (
	"syscall"
	"unsafe"
)

// allocChunk maps a chunk outside the Go heap. A Message holds no
// pointers, so the collector never needs to see it, and a history of
// hundreds of megabytes does not double the heap goal (GOGC paces the
// heap by its live size: an on-heap history would let the runner's and
// the brokers' garbage grow as large before a collection).
func allocChunk() []Message {
	b, err := syscall.Mmap(-1, 0, chunkBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]Message, chunkSize) // out of address space: the heap still works
	}
	return unsafe.Slice((*Message)(unsafe.Pointer(&b[0])), chunkSize)
}

// freeChunk unmaps a chunk from allocChunk; a heap chunk is left to the
// collector.
func freeChunk(c []Message, mapped bool) {
	if mapped {
		_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), chunkBytes))
	}
}

const offHeap = true
