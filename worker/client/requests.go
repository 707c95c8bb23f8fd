package client

import "github.com/sfblocks/sfblocks/blocks"

// The request shapes are the blocks package's own, so the client can never
// drift from what the worker decodes. Zero fields are omitted and take the
// worker's defaults.
type (
	// SearchRequest is a Search job; see [blocks.SearchRequest].
	SearchRequest = blocks.SearchRequest
	// InsertRequest is an Insert job; see [blocks.InsertRequest].
	InsertRequest = blocks.InsertRequest
	// Condition is a structured-search condition; see [blocks.Condition].
	Condition = blocks.Condition
	// Order is one structured-search sort item; see [blocks.Order].
	Order = blocks.Order
	// ExternalID turns an Insert into an upsert; see [blocks.ExternalID].
	ExternalID = blocks.ExternalID
)
