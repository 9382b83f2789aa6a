package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// TLS session tickets shared by replicas. A server alone on its database
// (Exclusive) lets crypto/tls keep random ticket keys in memory and rotate
// them. Replicas behind one address must decrypt each other's tickets, or
// an agent whose next connection lands on another replica pays a full
// handshake: they take their ticket keys from the database (the table
// server_settings, where the token-signing keys live too), one key per
// UTC day, created by the first replica that needs it. Each replica
// encrypts with today's key and still decrypts yesterday's tickets and
// tomorrow's (a replica whose clock or reload is a little ahead); keys are
// deleted from the database once no replica uses them.

// ticketKeyPrefix names the per-day settings: ticketKeyPrefix + day number
// (days since the Unix epoch, UTC).
const ticketKeyPrefix = "tls-ticket-key:"

// ticketKeyDay is how long one ticket key encrypts.
const ticketKeyDay = 24 * time.Hour

// ticketKeys reads (creating them when missing) the session ticket keys
// for now: today's first (it encrypts), then tomorrow's and yesterday's.
func (s *Server) ticketKeys(ctx context.Context, now time.Time) ([][32]byte, error) {
	day := now.UTC().Unix() / int64(ticketKeyDay/time.Second)
	var keys [][32]byte
	for _, d := range []int64{day, day + 1, day - 1} {
		var fresh [32]byte
		if _, err := rand.Read(fresh[:]); err != nil {
			return nil, fmt.Errorf("generate a TLS session ticket key: %w", err)
		}
		v, err := s.st.EnsureSetting(ctx, ticketKeyPrefix+strconv.FormatInt(d, 10), []byte(hex.EncodeToString(fresh[:])), now)
		if err != nil {
			return nil, fmt.Errorf("read the shared TLS session ticket keys: %w", err)
		}
		var k [32]byte
		b, err := hex.DecodeString(string(v))
		if err != nil || len(b) != len(k) {
			return nil, fmt.Errorf("the shared TLS session ticket key of day %d in server_settings is malformed: delete the row (name %s%d) and restart the replicas", d, ticketKeyPrefix, d)
		}
		copy(k[:], b)
		keys = append(keys, k)
	}
	return keys, nil
}

// ShareSessionTickets gives cfg the replicas' shared session ticket keys,
// which Start's reload loop then keeps current (every KeyReload); it
// returns the first load's error. An exclusive server keeps crypto/tls's
// own keys.
func (s *Server) ShareSessionTickets(ctx context.Context, cfg *tls.Config) error {
	if s.exclusive {
		return nil
	}
	if err := s.loadTicketKeys(ctx, cfg); err != nil {
		return err
	}
	s.ticketCfg.Store(cfg)
	return nil
}

// reloadTicketKeys re-reads the shared ticket keys of the configuration
// ShareSessionTickets was given, if any. On failure the previous keys stay
// in use: tickets a replica cannot decrypt cost a full handshake, nothing
// more.
func (s *Server) reloadTicketKeys(ctx context.Context) {
	if cfg := s.ticketCfg.Load(); cfg != nil {
		if err := s.loadTicketKeys(ctx, cfg); err != nil && ctx.Err() == nil {
			s.log.Warn("reload the shared TLS session ticket keys", "err", err)
		}
	}
}

func (s *Server) loadTicketKeys(ctx context.Context, cfg *tls.Config) error {
	now := s.now()
	keys, err := s.ticketKeys(ctx, now)
	if err != nil {
		return err
	}
	cfg.SetSessionTicketKeys(keys)
	// A key is created at most a day before its day and used until the
	// day after it: three days, plus a day for clocks and reloads.
	_, err = s.st.PruneSettings(ctx, ticketKeyPrefix, now.Add(-4*ticketKeyDay))
	return err
}
