package releases

import (
	"context"
	"log/slog"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// Checker evaluates installed versions against a source under policies. It
// asks the source once per product and keeps the index; it is meant for one
// goroutine.
type Checker struct {
	Source   Source
	Policies Policies
	Now      time.Time // zero: time.Now() at the first use
	Log      *slog.Logger

	indexes map[string]*Index // nil value: the source does not know the product
}

// maxIndexes bounds the products a Checker remembers as unknown.
const maxIndexes = 10_000

// Index returns the index of product, or nil (and no error) when the source
// does not know the product.
func (c *Checker) Index(ctx context.Context, product string) (*Index, error) {
	if ix, ok := c.indexes[product]; ok {
		return ix, nil
	}
	if c.indexes == nil {
		c.indexes = map[string]*Index{}
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	rels, err := c.Source.Releases(ctx, product)
	if errcode.Is(err, CodeUnknownProduct) {
		// Remember unknown products, up to a bound: an inventory may name
		// any number of distinct extensions.
		if len(c.indexes) < maxIndexes {
			c.indexes[product] = nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ix, skipped, err := NewIndex(product, rels, c.Policies.For(product), c.Now)
	if err != nil {
		return nil, err
	}
	if skipped > 0 && c.Log != nil {
		c.Log.Warn("releases with a tag that is not a version were skipped", "source", c.Source.String(), "product", product, "skipped", skipped)
	}
	c.indexes[product] = ix
	return ix, nil
}

// Require fails when the source does not know product (an unknown product
// or repository named on purpose, e.g. in a policy flag).
func (c *Checker) Require(ctx context.Context, product string) (*Index, error) {
	ix, err := c.Index(ctx, product)
	if err != nil {
		return nil, err
	}
	if ix == nil {
		_, err := c.Source.Releases(ctx, product)
		if err == nil {
			err = newErr(CodeUnknownProduct, c.Source.String(), nil, "no releases of %q", product)
		}
		return nil, err
	}
	return ix, nil
}
