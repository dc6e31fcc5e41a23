package eventlog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/internal/idindex"
)

// gapSubject holds the placeholders that skip the positions a damaged log
// lost (see fillGap). No event subject matches it.
const gapSubject = subjectPrefix + "._gap"

// Damage describes acknowledged events that the log no longer has,
// found when it was opened: its storage was damaged (a corrupt or
// truncated message block) while the service was stopped.
type Damage struct {
	// TailFrom through TailTo are positions handed out before the stop
	// that the log's end no longer reaches (0, 0: none). At least these
	// events are gone; events acknowledged after the index's last
	// checkpoint may be gone too.
	TailFrom, TailTo uint64
	// Holes is how many events are missing inside the log, between
	// events it still has (single-node logs only: on a cluster, replicas
	// repair each other).
	Holes uint64
	// ServerLost is how many messages the NATS server itself reported
	// lost.
	ServerLost uint64
	// Skipped is true when the lost tail's positions were skipped, so that
	// they are never handed out again as cursors.
	Skipped bool
}

// Lost is how many acknowledged events are known to be gone.
func (d Damage) Lost() uint64 {
	n := d.Holes + d.ServerLost
	if d.TailTo > 0 {
		n += d.TailTo - d.TailFrom + 1
	}
	return n
}

func (d Damage) String() string {
	var parts []string
	if d.TailTo > 0 {
		parts = append(parts, fmt.Sprintf("positions %d-%d at the end of the log", d.TailFrom, d.TailTo))
	}
	if d.Holes > 0 {
		parts = append(parts, fmt.Sprintf("%d events inside the log", d.Holes))
	}
	if d.ServerLost > 0 {
		parts = append(parts, fmt.Sprintf("%d messages the NATS server reported lost", d.ServerLost))
	}
	return fmt.Sprintf("the event log lost %d acknowledged events while stopped: %s", d.Lost(), strings.Join(parts, "; "))
}

// Damage reports what the log found missing when it was opened, nil when
// nothing was.
func (l *Log) Damage() *Damage { return l.damage }

// checkDamage compares the log with what the dedup index's checkpoint
// says it had when the service last stopped: an end before the
// checkpoint's position, or more holes than the checkpoint recorded, means
// acknowledged events were lost. It reports the loss loudly and, on an
// embedded log, skips the lost tail's positions, so that no cursor handed
// out before is handed out again for a different event. It returns the
// stream's state after that.
func (l *Log) checkDamage(ctx context.Context, info *jetstream.StreamInfo, cp idindex.Checkpoint) (*jetstream.StreamInfo, error) {
	var d Damage
	if cp.Seq > info.State.LastSeq {
		d.TailFrom, d.TailTo = info.State.LastSeq+1, cp.Seq
	}
	if holes := holesOf(info.State); l.Embedded() && holes > cp.Holes {
		d.Holes = holes - cp.Holes
	}
	if info.State.Lost != nil {
		d.ServerLost = uint64(len(info.State.Lost.Msgs))
	}
	if d.Lost() == 0 {
		return info, nil
	}
	if d.TailTo > 0 && l.Embedded() {
		if err := l.fillGap(ctx, info.State.LastSeq, d.TailTo); err != nil {
			return nil, fmt.Errorf("eventlog: skipping the lost positions %d-%d: %w", d.TailFrom, d.TailTo, err)
		}
		d.Skipped = true
		var err error
		if info, err = l.stream.Info(ctx); err != nil {
			return nil, fmt.Errorf("eventlog: stream %s: %w", l.cfg.Stream, err)
		}
	}
	l.damage = &d
	next := "restore the data directory from a backup taken before the damage if you have one; otherwise ask the vendors to resend " +
		"(ClinchPad and Closer cannot; Pipedrive v1/v2 retry only for minutes) and tell consumers that events are missing. " +
		"The service keeps running; this message, /healthz and hookstream_log_lost_events report it until the next restart"
	if d.TailTo > 0 && !d.Skipped {
		next += ". On a cluster the lost positions are not skipped: consumers holding cursors past the log's end get OUT_OF_RANGE"
	}
	l.log.Error("event log damaged: acknowledged events are missing",
		"lost", d.Lost(), "tail_from", d.TailFrom, "tail_to", d.TailTo, "holes", d.Holes, "server_lost", d.ServerLost,
		"positions_skipped", d.Skipped, "stream", l.cfg.Stream, "what_next", next)
	return info, nil
}

// holesOf counts the positions between the log's first and last that hold
// no message. Counted this way (rather than by NumDeleted, which leaves out
// deletes at either end) the figure changes only when messages inside the
// log are deleted or lost: appends and age-based expiry leave it alone.
func holesOf(st jetstream.StreamState) uint64 {
	if st.FirstSeq == 0 || st.LastSeq < st.FirstSeq {
		return 0
	}
	span := st.LastSeq - st.FirstSeq + 1
	if st.Msgs >= span {
		return 0
	}
	return span - st.Msgs
}

// fillGap moves the log's end from last to to by storing and at once
// deleting one placeholder per position: JetStream has no other way to
// advance a stream's sequence, and a deleted message leaves its position
// used. Nothing else writes while the log opens.
func (l *Log) fillGap(ctx context.Context, last, to uint64) error {
	began, report := time.Now(), time.Now()
	for last < to {
		ack, err := l.js.Publish(ctx, gapSubject, nil, jetstream.WithExpectStream(l.cfg.Stream))
		if err != nil {
			return err
		}
		if err := l.stream.DeleteMsg(ctx, ack.Sequence); err != nil {
			return err
		}
		last = ack.Sequence
		if time.Since(report) > 5*time.Second {
			report = time.Now()
			l.log.Info("skipping the lost positions", "at", last, "to", to)
		}
	}
	l.log.Info("lost positions skipped", "to", to, "took", time.Since(began).Round(time.Millisecond))
	return l.Sync(ctx)
}
