package eventlog

import (
	"errors"
)

// Follower receives every event of the log, in order, from the process's
// one reader of the whole log, once the dedup index holds it.
type Follower interface {
	// Event is called on the reader's goroutine and must not block.
	Event(Stored)
	// Lost says the reader stopped or starts over: the log failed, the
	// reader was stuck, or (ErrReplaced) the stream was deleted and created
	// again. Events resume after the last one passed on; after
	// ErrReplaced, from the new stream's recent events.
	Lost(error)
}

// ErrReplaced is what a Follower is told when the stream was replaced.
var ErrReplaced = errors.New("the event stream was deleted and created again")

// Follow makes f the log's follower and returns the position of the last
// event the reader has passed on: f receives every event after it. A log
// has one follower; Follow fails if another is registered.
func (l *Log) Follow(f Follower) (uint64, error) {
	l.index.mu.Lock()
	defer l.index.mu.Unlock()
	if l.index.follower != nil && l.index.follower != f {
		return 0, errors.New("eventlog: the log already has a follower")
	}
	l.index.follower = f
	return l.index.indexed, nil
}

// Unfollow removes f, if it is the follower.
func (l *Log) Unfollow(f Follower) {
	l.index.mu.Lock()
	defer l.index.mu.Unlock()
	if l.index.follower == f {
		l.index.follower = nil
	}
}

// lost tells the follower, if any, that the reader starts over.
func (ix *indexer) lost(err error) {
	ix.mu.Lock()
	f := ix.follower
	ix.mu.Unlock()
	if f != nil {
		f.Lost(err)
	}
}

// Incarnation identifies the stream the log's positions belong to. It
// changes when the stream is found deleted and created again, whose
// positions start over: a reader that keeps positions (an outbound
// endpoint's cursor) must not carry them from one incarnation to the
// next. It is the stream's name and creation time, stable across restarts.
func (l *Log) Incarnation() string {
	if l.index == nil {
		return ""
	}
	return *l.index.incarnation.Load()
}
