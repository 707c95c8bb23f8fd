package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
)

const resultSynopsis = `result [flags] ID

Prints the kept result of a finished job as JSON: a durable job's, or a
synchronous Insert's that carried its own id. A job is known by its block,
account and id: without --block, both blocks are looked up and every kept
result found is printed. Results are kept for --results-ttl (24h).

Exits 0 when a result is found, 1 when none is (the job did not finish,
its result expired, or another block or account ran it).`

func runResult(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("result", resultSynopsis, stderr)
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	prefix := fs.String("prefix", envOr("SFBLOCKS_PREFIX", sfblocks.DefaultPrefix), "subject prefix (env SFBLOCKS_PREFIX)")
	block := fs.String("block", "", "the job's block, search or insert (default: look up both)")
	account := fs.String("account", "", "the account the job named (default: the job named none)")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		fs.Usage()
		return errUsage
	}
	blocksToTry := sfblocks.Blocks()
	if *block != "" {
		b := sfblocks.Block(*block)
		if !b.Valid() {
			return fmt.Errorf("--block %q: use search or insert", *block)
		}
		blocksToTry = []sfblocks.Block{b}
	}
	conn.URLs = strings.Split(natsURL, ",")
	conn.Name = "sfblocks-result"
	nc, err := worker.Connect(conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithPrefix(*prefix))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	found := 0
	for _, b := range blocksToTry {
		r, err := c.Result(ctx, sfblocks.JobIdentity{Block: b, Account: *account, ID: ids[0]})
		if errors.Is(err, client.ErrNoResult) {
			continue
		}
		if err != nil {
			return err
		}
		found++
		out, _ := json.MarshalIndent(struct {
			Block  sfblocks.Block  `json:"block"`
			Result *sfblocks.Reply `json:"result"`
		}{b, r}, "", "  ")
		fmt.Fprintln(stdout, string(out))
	}
	if found == 0 {
		acct := "no account"
		if *account != "" {
			acct = "account " + *account
		}
		fmt.Fprintf(stderr, "no kept result for job %q (%s, block %s): it did not finish, its result expired, or it named another account (--account)\n",
			ids[0], acct, strings.Join(blockNames(blocksToTry), " or "))
		return exitError{code: 1}
	}
	return nil
}

func blockNames(bs []sfblocks.Block) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
