package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// pgRemember is RememberAssertions' one statement on PostgreSQL: the
// batch travels as two arrays, and RETURNING names the rows inserted or
// taken over (the fresh keys). A statement per key costs a round trip
// each.
const pgRemember = `INSERT INTO assertion_replay (replay_key, expires_at)
	SELECT * FROM unnest(?::text[], ?::bigint[])
	ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at
	WHERE assertion_replay.expires_at < ?
	RETURNING replay_key`

// rememberAssertionsPG writes the batch in one statement, in key order. A
// key twice in the batch goes in once (ON CONFLICT DO UPDATE may not touch
// a row twice in one statement) and is fresh at its first place only. Two
// replicas' batches meeting on the same keys can still lock in different
// orders; a deadlock (SQLSTATE 40P01) aborts one statement whole, which is
// retried.
func (s *DB) rememberAssertionsPG(ctx context.Context, keys []AssertionKey, now time.Time) ([]bool, error) {
	first := make(map[string]int, len(keys)) // row key → index of its first place
	rows := make([]string, 0, len(keys))
	for i, k := range keys {
		r := replayRowKey(k.Key)
		if _, dup := first[r]; !dup {
			first[r] = i
			rows = append(rows, r)
		}
	}
	slices.Sort(rows)
	expires := make([]int64, len(rows))
	for i, r := range rows {
		expires[i] = ms(keys[first[r]].Expires)
	}
	fresh := make([]bool, len(keys))
	var err error
	for range 5 {
		if err = s.rememberPGOnce(ctx, rows, expires, now, first, fresh); pgCode(err) != "40P01" {
			break
		}
		clear(fresh)
	}
	if err != nil {
		return nil, fmt.Errorf("remember assertions: %w", err)
	}
	return fresh, nil
}

func (s *DB) rememberPGOnce(ctx context.Context, rows []string, expires []int64, now time.Time, first map[string]int, fresh []bool) error {
	res, err := s.w.QueryContext(ctx, pgRemember, rows, expires, ms(now))
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var r string
		if err := res.Scan(&r); err != nil {
			return err
		}
		i, ok := first[r]
		if !ok {
			return fmt.Errorf("the database returned replay key %q that was not in the batch", r)
		}
		fresh[i] = true
	}
	return res.Err()
}
