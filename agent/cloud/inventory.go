package cloud

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// EachInventory reads the fleet inventory (GET /v1/inventory, optionally
// of one subscription or resource group) and passes each machine the
// caller may read to fn as it arrives: memory stays flat however large the
// fleet. The value fn gets is reused; fn must copy what it keeps. An error
// from fn stops the read and is returned.
func (o *Operator) EachInventory(ctx context.Context, sub, rg string, fn func(*apiv1.MachineInventory) error) error {
	const path = "/v1/inventory"
	u := *o.c.base
	u.Path = o.c.base.Path + path
	u.RawQuery = scopeQuery(sub, rg).Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", o.c.ua)
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := o.c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errcode.Wrap(apiv1.CodeUnreachable, err, "GET %s", o.c.base.Host)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		var e apiv1.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return &APIError{Status: resp.StatusCode, Err: errcode.New(apiv1.CodeBadResponse, "GET %s: HTTP %d from a server that is not arcserver (or an arcserver older than the fleet inventory)", path, resp.StatusCode)}
		}
		return &APIError{Status: resp.StatusCode, Err: errcode.New(errcode.Code(e.Code), "%s", e.Message)}
	}
	if resp.StatusCode != http.StatusOK {
		return errcode.New(apiv1.CodeBadResponse, "GET %s: unexpected HTTP %d", path, resp.StatusCode)
	}
	err = decodeInventory(bufio.NewReaderSize(resp.Body, 64<<10), fn)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// decodeInventory reads {"value": [machine, ...]} machine by machine.
func decodeInventory(r io.Reader, fn func(*apiv1.MachineInventory) error) error {
	dec := json.NewDecoder(r)
	bad := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return errcode.Wrap(apiv1.CodeBadResponse, err, "GET /v1/inventory: the response is cut short or is not a machine list (at byte %d); run the command again", dec.InputOffset())
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad(errOr(err, "not a JSON object"))
	}
	found := false
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		if k != "value" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err)
			}
			continue
		}
		found = true
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		if tok == nil {
			continue
		}
		if tok != json.Delim('[') {
			return bad(errors.New("value is not a list"))
		}
		var m apiv1.MachineInventory
		for dec.More() {
			exts := m.Extensions[:0]
			clear(exts[:cap(exts)])
			m = apiv1.MachineInventory{Extensions: exts}
			if err := dec.Decode(&m); err != nil {
				return bad(err)
			}
			if err := fn(&m); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	if !found {
		return bad(errors.New(`no "value" list`))
	}
	return nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}
