package nameserver

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
)

// topicsFile is the group topic configuration a broker keeps in its
// DataDir, like RocketMQ's config/topics.json.
const topicsFile = "topics.json"

// topicsDoc is the content of topics.json.
type topicsDoc struct {
	Topics []GroupTopic `json:"topics"`
	// Deleted are topics a name server deleted from this group and not
	// created again since; see topicStore.deleted.
	Deleted []string `json:"deleted,omitempty"`
}

// decodeTopics parses topics.json.
func decodeTopics(data []byte) (topicsDoc, error) {
	var doc topicsDoc
	if err := decodeBody(data, &doc); err != nil {
		return topicsDoc{}, err
	}
	seen := make(map[string]bool, len(doc.Topics))
	for _, t := range doc.Topics {
		if err := t.validate(); err != nil {
			return topicsDoc{}, err
		}
		if seen[t.Name] {
			return topicsDoc{}, fmt.Errorf("%w: topic %q listed twice", broker.ErrInvalidTopic, t.Name)
		}
		seen[t.Name] = true
	}
	for _, name := range doc.Deleted {
		if seen[name] {
			return topicsDoc{}, fmt.Errorf("%w: topic %q is both held and deleted", broker.ErrInvalidTopic, name)
		}
		if err := validTopicName(name); err != nil {
			return topicsDoc{}, err
		}
	}
	return doc, nil
}

// topicStore is the group topic configuration one broker holds, persisted
// to dir/topics.json when dir is set.
type topicStore struct {
	dir string

	mu     sync.Mutex // guards topics, deleted and writes of the file
	topics map[string]GroupTopic
	// deleted are the topics a name server's deletion push removed and no
	// push or route has brought back since: the registrar announces them
	// as the view's DeletedTopics, the only thing that makes the broker
	// remove their data. A topic that is merely missing from a route (a
	// name server that has just restarted) is never in it.
	deleted map[string]struct{}
}

// openTopicStore loads dir/topics.json; a missing file is an empty store.
func openTopicStore(dir string) (*topicStore, error) {
	s := &topicStore{dir: dir, topics: make(map[string]GroupTopic), deleted: make(map[string]struct{})}
	if dir == "" {
		return s, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, topicsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nameserver: reading topic config: %w", err)
	}
	doc, err := decodeTopics(data)
	if err != nil {
		return nil, fmt.Errorf("nameserver: %s: %w", filepath.Join(dir, topicsFile), err)
	}
	for _, t := range doc.Topics {
		s.topics[t.Name] = t
	}
	for _, name := range doc.Deleted {
		s.deleted[name] = struct{}{}
	}
	return s, nil
}

// list returns the topics by name.
func (s *topicStore) list() []GroupTopic {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked()
}

func (s *topicStore) listLocked() []GroupTopic {
	ts := make([]GroupTopic, 0, len(s.topics))
	for _, t := range s.topics {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b GroupTopic) int { return cmp.Compare(a.Name, b.Name) })
	return ts
}

// deletedNames returns the deleted topics by name.
func (s *topicStore) deletedNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deletedLocked()
}

func (s *topicStore) deletedLocked() []string {
	names := make([]string, 0, len(s.deleted))
	for name := range s.deleted {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// isDeleted reports whether a deletion push removed the topic and no
// creation has brought it back since.
func (s *topicStore) isDeleted(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.deleted[name]
	return ok
}

// get returns one topic.
func (s *topicStore) get(name string) (GroupTopic, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	return t, ok
}

// put adds a topic. The same topic again is a no-op; a different placement
// under the same name fails with broker.ErrTopicExists. changed reports
// whether the store changed.
func (s *topicStore) put(t GroupTopic) (changed bool, err error) {
	if err := t.validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.topics[t.Name]; ok {
		if old == t {
			return false, nil
		}
		return false, fmt.Errorf("%w: %q with another placement", broker.ErrTopicExists, t.Name)
	}
	s.topics[t.Name] = t
	_, wasDeleted := s.deleted[t.Name]
	delete(s.deleted, t.Name)
	if err := s.saveLocked(); err != nil {
		delete(s.topics, t.Name)
		if wasDeleted {
			s.deleted[t.Name] = struct{}{}
		}
		return false, err
	}
	return true, nil
}

// remove drops a topic and records it as deleted; changed reports whether
// it was there.
func (s *topicStore) remove(name string) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.topics[name]
	if !ok {
		return false, nil
	}
	delete(s.topics, name)
	s.deleted[name] = struct{}{}
	if err := s.saveLocked(); err != nil {
		s.topics[name] = old
		delete(s.deleted, name)
		return false, err
	}
	return true, nil
}

// saveLocked writes topics.json atomically (temporary file, fsync, rename).
// Lock should be held.
func (s *topicStore) saveLocked() error {
	if s.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(topicsDoc{Topics: s.listLocked(), Deleted: s.deletedLocked()}, "", "  ")
	if err != nil {
		return fmt.Errorf("nameserver: encoding topic config: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("nameserver: saving topic config: %w", err)
	}
	f, err := os.CreateTemp(s.dir, topicsFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("nameserver: saving topic config: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, topicsFile))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("nameserver: saving topic config: %w", err)
	}
	return nil
}
