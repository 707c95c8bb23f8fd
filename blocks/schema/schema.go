// Package schema holds the JSON Schemas (draft 2020-12) of the jobs and
// replies of sfblocks' scenario blocks, for callers that validate or
// generate jobs in other languages. Package blocks is the authority: its
// decoder accepts exactly what these schemas describe, except for checks a
// schema cannot express (API name rules on relationship paths, variables
// used by the query, sizes in bytes), and a test keeps the two in step.
package schema

import (
	"bytes"
	"embed"
)

// FS holds every schema file: search.request.json, search.reply.json,
// insert.request.json and insert.reply.json.
//
//go:embed *.json
var FS embed.FS

//go:embed search.request.json
var searchRequest []byte

//go:embed search.reply.json
var searchReply []byte

//go:embed insert.request.json
var insertRequest []byte

//go:embed insert.reply.json
var insertReply []byte

// SearchRequest returns the schema of a search job (a fresh copy).
func SearchRequest() []byte { return bytes.Clone(searchRequest) }

// SearchReply returns the schema of a search reply (a fresh copy).
func SearchReply() []byte { return bytes.Clone(searchReply) }

// InsertRequest returns the schema of an insert job (a fresh copy).
func InsertRequest() []byte { return bytes.Clone(insertRequest) }

// InsertReply returns the schema of an insert reply (a fresh copy).
func InsertReply() []byte { return bytes.Clone(insertReply) }
