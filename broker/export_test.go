package broker

// Test-only access for the external test package (broker_test), which can
// import the control planes that themselves import broker.

// HandleFrame runs one request frame through decoding and dispatch.
func (b *Broker) HandleFrame(frame []byte) ([]byte, error) { return b.handle(frame, nil) }

// Panics is the number of recovered handler panics.
func (b *Broker) Panics() int64 { return b.stats.panics.Load() }

// APIRange is the served version range of an API key.
func APIRange(key int16) (int16, int16) { r := apiVersions[key]; return r.min, r.max }

// APICount is the number of APIs served.
func APICount() int { return len(apiVersions) }

// ReadFrame exposes the frame reader.
var ReadFrame = readFrame
