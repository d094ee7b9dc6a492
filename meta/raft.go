package meta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// fsm applies the Raft log to the Badger store.
//
// Badger writes are not fsynced one by one: the Raft log is the durable
// record, and every transaction stores the index of the command it applies
// (keyApplied), so after a crash the store knows which commands it holds and
// the log replays the rest. Raft is told not to restore its snapshot on start
// (the store already holds at least that much, because Snapshot syncs Badger
// before the log behind it may be compacted).
type fsm struct {
	st   *store
	feed *feed
	log  *slog.Logger
	// skipTo is the highest index the store is known to hold; replayed
	// commands up to it are already applied.
	skipTo uint64
}

// applyResult is what a command returned, handed back to its proposer.
type applyResult struct {
	v   any
	err error
}

func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		f.feed.applied(l.Index, nil)
		return nil
	}
	if l.Index <= f.skipTo {
		return applyResult{}
	}
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		f.log.Error("undecodable metadata command; skipped", "index", l.Index, "err", err)
		f.feed.applied(l.Index, nil)
		return applyResult{err: fmt.Errorf("decode command %d: %w", l.Index, err)}
	}
	f.st.applying = l.Index
	v, ch, err := f.st.apply(c)
	f.st.applying = 0
	if err != nil {
		ch = nil
	}
	f.feed.applied(l.Index, ch)
	return applyResult{v: v, err: err}
}

// ApplyBatch lets Raft hand over every committed entry of one round at once.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

// Snapshot syncs the store so the log behind it may be compacted, and
// streams Badger's backup format from it when Raft persists the snapshot.
// Commands applied between now and the backup end up in it too; that is
// harmless, because the backup carries keyApplied and a node restoring it
// skips what it already holds.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.st.db.Sync(); err != nil {
		return nil, fmt.Errorf("sync metadata store for snapshot: %w", err)
	}
	return &snapshot{st: f.st}, nil
}

// Restore replaces the whole store with a snapshot from the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.st.swap.Lock()
	defer f.st.swap.Unlock()
	if err := f.st.db.DropAll(); err != nil {
		return fmt.Errorf("restore snapshot: clear store: %w", err)
	}
	if err := f.st.db.Load(rc, 256); err != nil {
		return fmt.Errorf("restore snapshot: load: %w", err)
	}
	applied, err := f.st.appliedIndexLocked()
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.skipTo = applied
	f.feed.reset(applied)
	f.log.Info("metadata restored from snapshot", "appliedIndex", applied)
	return nil
}

type snapshot struct{ st *store }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	s.st.swap.RLock()
	defer s.st.swap.RUnlock()
	if _, err := s.st.db.Backup(sink, 0); err != nil {
		sink.Cancel()
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// appliedIndex is the index of the last command whose effects the store holds.
func (s *store) appliedIndex() (uint64, error) {
	s.swap.RLock()
	defer s.swap.RUnlock()
	return s.appliedIndexLocked()
}

func (s *store) appliedIndexLocked() (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyApplied)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(val []byte) error {
			if len(val) != 8 {
				return fmt.Errorf("applied index is %d bytes", len(val))
			}
			v = binary.BigEndian.Uint64(val)
			return nil
		})
	})
	return v, err
}

// raftNode is this server's Raft instance and the stores under it.
type raftNode struct {
	r     *raft.Raft
	trans *raft.NetworkTransport
	logs  *raftboltdb.BoltStore
}

func openRaft(cfg Config, f *fsm) (*raftNode, error) {
	dir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft directory: %w", err)
	}
	logw := slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn).Writer()
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: logw})
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
		rc.SnapshotInterval = time.Second
	}

	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "log.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	logs, err := raft.NewLogCache(1024, bolt)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, logw)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("open raft snapshots: %w", err)
	}
	var adv net.Addr
	if cfg.RaftAdvertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			bolt.Close()
			return nil, fmt.Errorf("raft advertise address %q: %w", cfg.RaftAdvertise, err)
		}
	}
	trans, err := raft.NewTCPTransport(cfg.RaftAddr, adv, 4, 10*time.Second, logw)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
	}
	existing, err := raft.HasExistingState(logs, bolt, snaps)
	if err != nil {
		trans.Close()
		bolt.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, f, logs, bolt, snaps, trans)
	if err != nil {
		trans.Close()
		bolt.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if !existing && len(cfg.Join) == 0 {
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown().Error()
			trans.Close()
			bolt.Close()
			return nil, fmt.Errorf("bootstrap raft group: %w", err)
		}
	}
	return &raftNode{r: r, trans: trans, logs: bolt}, nil
}

func (n *raftNode) close() error {
	err := n.r.Shutdown().Error()
	return errors.Join(err, n.trans.Close(), n.logs.Close())
}
