// Package schema holds the JSON Schemas (draft 2020-12) of the jobs and
// replies of sfblocks' scenario blocks, for callers that validate or
// generate jobs in other languages. Package blocks is the authority: its
// decoder accepts exactly what these schemas describe, except for checks a
// schema cannot express (API name rules on relationship paths, variables
// used by the query, sizes in bytes), and a test keeps the two in step.
package schema

import "embed"

// FS holds every schema file: search.request.json, search.reply.json,
// insert.request.json and insert.reply.json.
//
//go:embed *.json
var FS embed.FS

// The schemas one by one, as embedded.
var (
	//go:embed search.request.json
	SearchRequest []byte
	//go:embed search.reply.json
	SearchReply []byte
	//go:embed insert.request.json
	InsertRequest []byte
	//go:embed insert.reply.json
	InsertReply []byte
)
