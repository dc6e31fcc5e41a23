// Package delivery pushes events from the log to users' HTTP endpoints:
// signed, retried on a schedule, ordered per subject when asked, with
// dead letters and redrive.
package delivery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
)

// The JetStream resources of delivery, beside the event log.
const (
	endpointsBucket = "hookstream_endpoints"
	stateBucket     = "hookstream_delivery_state"
	leasesBucket    = "hookstream_delivery_leases"
	attemptsStream  = "hookstream_attempts"
	deadStream      = "hookstream_dead_letters"
	redriveStream   = "hookstream_redrive"

	attemptsPrefix = "hookstream.attempts"
	deadPrefix     = "hookstream.dead"
	redrivePrefix  = "hookstream.redrive"
)

// Errors the API maps to statuses.
var (
	ErrNotFound     = errors.New("delivery: no such endpoint")
	ErrConflict     = errors.New("delivery: the endpoint changed meanwhile; try again")
	ErrTooMany      = errors.New("delivery: too many endpoints")
	ErrNoSecretKey  = errors.New("delivery: endpoints need delivery.secret_key (to seal their signing secrets at rest) or delivery.plain_secrets: true in the config")
	ErrSecretSealed = errors.New("delivery: a signing secret is sealed with a key this server does not have (delivery.secret_key changed?)")
)

// record is an endpoint as stored: the public message without secrets,
// and the secrets, sealed when the config has a key.
type record struct {
	Endpoint json.RawMessage `json:"endpoint"`
	// Secrets, newest first; older ones carry when they stop signing.
	Secrets []storedSecret `json:"secrets"`
	// Password of Basic auth, sealed like the secrets.
	Password string `json:"password,omitempty"`
}

type storedSecret struct {
	Value  string     `json:"value"`
	Expire *time.Time `json:"expire,omitempty"`
}

// Endpoint is an endpoint with its secrets open, as the engine uses it.
type Endpoint struct {
	*hookstreamv1.Endpoint
	// Secrets that sign now, newest first (whsec_ form).
	Secrets []string
	// Expires says when each of Secrets stops signing (zero: never).
	Expires []time.Time
	// Password of Basic auth.
	Password string
	// Revision of the record in the bucket, for compare-and-set.
	Revision uint64
	// keys are Secrets decoded, for signing.
	keys [][]byte
}

// Store keeps endpoints in a JetStream key-value bucket.
type Store struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	aead     cipher.AEAD // nil: secrets stored plain
	plain    bool
	max      int
	replicas int
	limits   LimitsGuard // nil: no check (StoreOptions.Guard)
	// streams are delivery's streams by name, looked up once here rather
	// than with a stream-info request on every read (the redrive poll
	// reads once a second per endpoint).
	streams map[string]jetstream.Stream
	// sync waits until what was written is on disk (StoreOptions.Syncer).
	sync func(context.Context) error
}

// Syncer is what the store needs of a log whose writes share syncs
// (eventlog.Log): the streams whose writes must be on disk before they are
// answered, and a wait for that.
type Syncer interface {
	// SyncStreams makes Sync cover writes to these streams.
	SyncStreams(streams ...string)
	// Sync returns once everything written before the call is on disk.
	Sync(ctx context.Context) error
}

// StoreOptions configure the store.
type StoreOptions struct {
	// Key seals secrets (32 bytes); nil stores them plain when Plain is
	// set, and refuses to store them otherwise.
	Key      []byte
	Plain    bool
	Max      int
	Replicas int
	// AttemptsRetention and DeadLetterRetention age out attempts and dead
	// letters.
	AttemptsRetention   time.Duration
	DeadLetterRetention time.Duration
	// Syncer, when set, is told the endpoints bucket's, the dead letters'
	// and the redrive requests' streams, and waited for after each write
	// to them (eventlog.Log: with fsync: always on the embedded server,
	// writes share syncs instead of the server syncing each).
	Syncer Syncer
	// Guard, when set, checks each bucket's and stream's limits before
	// they are set (eventlog.Log.GuardLimits: a replica must not lower
	// what the others keep).
	Guard LimitsGuard
}

// LimitsGuard checks the limits about to be set on an existing stream.
type LimitsGuard interface {
	GuardLimits(ctx context.Context, stream string, want eventlog.StreamLimits) error
}

// guard checks want against stream through the store's guard, if any.
func (s *Store) guard(ctx context.Context, stream string, want eventlog.StreamLimits) error {
	if s.limits == nil {
		return nil
	}
	return s.limits.GuardLimits(ctx, stream, want)
}

// OpenStore creates or updates delivery's buckets and streams.
func OpenStore(ctx context.Context, js jetstream.JetStream, o StoreOptions) (*Store, error) {
	s := &Store{js: js, plain: o.Plain, max: o.Max, replicas: max(1, o.Replicas), streams: map[string]jetstream.Stream{},
		sync: func(context.Context) error { return nil }}
	if o.Syncer != nil {
		o.Syncer.SyncStreams("KV_"+endpointsBucket, deadStream, redriveStream)
		s.sync = o.Syncer.Sync
	}
	if o.Key != nil {
		block, err := aes.NewCipher(o.Key)
		if err != nil {
			return nil, fmt.Errorf("delivery: secret key: %w", err)
		}
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("delivery: secret key: %w", err)
		}
	}
	s.limits = o.Guard
	if err := s.guard(ctx, "KV_"+endpointsBucket, eventlog.StreamLimits{Replicas: s.replicas}); err != nil {
		return nil, err
	}
	var err error
	if s.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: endpointsBucket, Description: "hookstream outbound endpoints", History: 1,
		Storage: jetstream.FileStorage, Replicas: s.replicas,
	}); err != nil {
		return nil, fmt.Errorf("delivery: bucket %s: %w", endpointsBucket, err)
	}
	for _, st := range []jetstream.StreamConfig{
		{Name: attemptsStream, Description: "hookstream delivery attempts", Subjects: []string{attemptsPrefix + ".>"},
			MaxAge: o.AttemptsRetention, MaxBytes: 4 << 30},
		{Name: deadStream, Description: "hookstream dead letters", Subjects: []string{deadPrefix + ".>"},
			MaxAge: o.DeadLetterRetention, MaxBytes: 4 << 30},
		{Name: redriveStream, Description: "hookstream redrive requests", Subjects: []string{redrivePrefix + ".>"},
			MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30},
	} {
		st.Storage, st.Replicas, st.Discard, st.AllowDirect = jetstream.FileStorage, s.replicas, jetstream.DiscardOld, true
		if err := s.guard(ctx, st.Name, eventlog.StreamLimits{Replicas: st.Replicas, MaxAge: st.MaxAge, MaxBytes: st.MaxBytes}); err != nil {
			return nil, err
		}
		str, err := js.CreateOrUpdateStream(ctx, st)
		if err != nil {
			if strings.Contains(err.Error(), "insufficient storage") {
				return nil, fmt.Errorf("delivery: stream %s: %w (delivery's streams reserve their caps, about 9 GiB together: "+
					"the NATS server needs that much more storage than the events take; see README, Durability)", st.Name, err)
			}
			return nil, fmt.Errorf("delivery: stream %s: %w", st.Name, err)
		}
		s.streams[st.Name] = str
	}
	return s, nil
}

// NewID makes an id with a prefix and 128 random bits.
func NewID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func validID(id string) bool {
	if len(id) < 4 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Get reads an endpoint with its secrets.
func (s *Store) Get(ctx context.Context, id string) (*Endpoint, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("delivery: read endpoint: %w", err)
	}
	return s.decode(id, e.Value(), e.Revision())
}

func (s *Store) decode(id string, raw []byte, rev uint64) (*Endpoint, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("delivery: endpoint %s: %w", id, err)
	}
	ep := &hookstreamv1.Endpoint{}
	if err := protojson.Unmarshal(r.Endpoint, ep); err != nil {
		return nil, fmt.Errorf("delivery: endpoint %s: %w", id, err)
	}
	out := &Endpoint{Endpoint: ep, Revision: rev}
	now := time.Now()
	for _, sec := range r.Secrets {
		if sec.Expire != nil && !sec.Expire.After(now) {
			continue
		}
		v, err := s.open(id, sec.Value)
		if err != nil {
			return nil, err
		}
		out.Secrets = append(out.Secrets, v)
		var exp time.Time
		if sec.Expire != nil {
			exp = *sec.Expire
		}
		out.Expires = append(out.Expires, exp)
	}
	if r.Password != "" {
		var err error
		if out.Password, err = s.open(id, r.Password); err != nil {
			return nil, err
		}
	}
	var err error
	if out.keys, err = Keys(out.Secrets); err != nil {
		return nil, fmt.Errorf("delivery: endpoint %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) encode(e *Endpoint) ([]byte, error) {
	pub := proto.Clone(e.Endpoint).(*hookstreamv1.Endpoint)
	pub.Secret = ""
	if pub.BasicAuth != nil {
		pub.BasicAuth.Password = ""
	}
	body, err := protojson.Marshal(pub)
	if err != nil {
		return nil, err
	}
	r := record{Endpoint: body}
	for i, sec := range e.Secrets {
		v, err := s.seal(e.Id, sec)
		if err != nil {
			return nil, err
		}
		st := storedSecret{Value: v}
		if !e.Expires[i].IsZero() {
			t := e.Expires[i]
			st.Expire = &t
		}
		r.Secrets = append(r.Secrets, st)
	}
	if e.Password != "" {
		if r.Password, err = s.seal(e.Id, e.Password); err != nil {
			return nil, err
		}
	}
	return json.Marshal(r)
}

// seal encrypts a secret for storage, bound to its endpoint.
func (s *Store) seal(id, secret string) (string, error) {
	if s.aead == nil {
		if !s.plain {
			return "", ErrNoSecretKey
		}
		return "plain:" + secret, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return "gcm:" + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), []byte(id))), nil
}

func (s *Store) open(id, v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "plain:"):
		return strings.TrimPrefix(v, "plain:"), nil
	case strings.HasPrefix(v, "gcm:") && s.aead != nil:
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "gcm:"))
		if err != nil || len(b) < s.aead.NonceSize() {
			return "", ErrSecretSealed
		}
		out, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(id))
		if err != nil {
			return "", ErrSecretSealed
		}
		return string(out), nil
	}
	return "", ErrSecretSealed
}

// CanStoreSecrets says whether Create can keep a secret.
func (s *Store) CanStoreSecrets() bool { return s.aead != nil || s.plain }

// Room is nil while another endpoint may be created: fewer than
// delivery.max_endpoints exist. Create does not check it: the caller
// does, before it records anything for the endpoint, and keeps its own
// creates from passing it together.
func (s *Store) Room(ctx context.Context) error {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("delivery: count endpoints: %w", err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n >= s.max {
		return fmt.Errorf("%w: at most %d (delivery.max_endpoints)", ErrTooMany, s.max)
	}
	return nil
}

// Create stores a new endpoint.
func (s *Store) Create(ctx context.Context, e *Endpoint) error {
	if !s.CanStoreSecrets() {
		return ErrNoSecretKey
	}
	raw, err := s.encode(e)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, e.Id, raw)
	if err != nil {
		return fmt.Errorf("delivery: store endpoint: %w", err)
	}
	e.Revision = rev
	return s.synced(ctx)
}

// synced waits for what was written to be on disk (StoreOptions.Syncer).
func (s *Store) synced(ctx context.Context) error {
	if err := s.sync(ctx); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	return nil
}

// Update changes an endpoint with fn, retrying on concurrent changes.
func (s *Store) Update(ctx context.Context, id string, fn func(*Endpoint) error) (*Endpoint, error) {
	for range 5 {
		e, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(e); err != nil {
			return nil, err
		}
		e.UpdateTime = timestamppb.Now()
		raw, err := s.encode(e)
		if err != nil {
			return nil, err
		}
		rev, err := s.kv.Update(ctx, id, raw, e.Revision)
		if err == nil {
			e.Revision = rev
			return e, s.synced(ctx)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("delivery: store endpoint: %w", err)
		}
	}
	return nil, ErrConflict
}

// Delete removes an endpoint.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, id); err != nil {
		return fmt.Errorf("delivery: delete endpoint: %w", err)
	}
	// Its dead letters go with it; its attempts age out.
	if err := s.streams[deadStream].Purge(ctx, jetstream.WithPurgeSubject(deadPrefix+"."+id)); err != nil {
		return fmt.Errorf("delivery: delete dead letters: %w", err)
	}
	return s.synced(ctx)
}

// List returns endpoints with ids after `after`, in id order.
func (s *Store) List(ctx context.Context, after string, limit int) ([]*Endpoint, bool, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("delivery: list endpoints: %w", err)
	}
	var ids []string
	for k := range keys.Keys() {
		if k > after {
			ids = append(ids, k)
		}
	}
	slices.Sort(ids)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]*Endpoint, 0, len(ids))
	for _, id := range ids {
		e, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	return out, more, nil
}
