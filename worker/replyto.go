package worker

import (
	"fmt"
	"strings"
)

// A job chooses where its reply goes: the reply subject of a request, the
// Reply-To header of a durable job. The worker publishes that reply with
// its own NATS rights, which reach the fleet's tokens, results, attempts
// and dead letters. So a reply subject is a confused deputy unless it is
// checked: a job whose reply subject aims at $KV.sfblocks_tokens.token.prod
// would otherwise overwrite the account's sealed token with plain JSON. The
// worker sends replies only to subjects of the allow-list (by default
// "_INBOX.>", where NATS clients make their inboxes) and never, whatever
// the list says, to a system subject (one starting with "$": $JS, $KV, $O,
// $SYS, $SRV...) or to one of its own prefix's subjects (its jobs, its dead
// letters). A refused job is not run.

// DefaultReplySubjects are the subjects a worker replies to unless
// [WithReplySubjects] says otherwise: NATS inboxes.
var defaultReplySubjects = []string{"_INBOX.>"}

// replyPolicy decides where a worker may publish replies.
type replyPolicy struct {
	allow  [][]string // token lists of the allowed patterns
	prefix string     // the worker's own prefix, never a reply target
}

func newReplyPolicy(patterns []string, prefix string) replyPolicy {
	p := replyPolicy{prefix: prefix}
	for _, s := range patterns {
		p.allow = append(p.allow, strings.Split(s, "."))
	}
	return p
}

// check returns why subject is refused as a reply subject, "" when the
// worker may reply there.
func (p replyPolicy) check(subject string) string {
	switch {
	case strings.HasPrefix(subject, "$"):
		return "a system subject ($JS, $KV, $O, $SYS...)"
	case subject == p.prefix || strings.HasPrefix(subject, p.prefix+"."):
		return "one of the worker's own subjects (prefix " + p.prefix + ")"
	case !validSubject(subject, false):
		return "not a valid subject"
	}
	for _, a := range p.allow {
		if subjectMatch(a, subject) {
			return ""
		}
	}
	return "outside the worker's reply subjects"
}

// subjectMatch reports whether a literal subject matches a pattern's
// tokens, with NATS wildcards ("*" one token, ">" the rest). It walks the
// subject in place: every job's reply subject is checked.
func subjectMatch(pattern []string, subject string) bool {
	for i, p := range pattern {
		if subject == "" && i > 0 {
			return false // fewer tokens than the pattern
		}
		tok, rest, more := strings.Cut(subject, ".")
		switch {
		case p == ">":
			return true // one token or more remain
		case p != "*" && p != tok:
			return false
		}
		if !more {
			return i == len(pattern)-1
		}
		subject = rest
	}
	return false // more tokens than the pattern
}

// validSubject reports whether s is a well-formed subject: non-empty
// tokens without whitespace; wildcards only when wild (and ">" last).
func validSubject(s string, wild bool) bool {
	if s == "" {
		return false
	}
	for s != "" {
		t, rest, more := strings.Cut(s, ".")
		switch {
		case t == "" || strings.ContainsAny(t, " \t\r\n"):
			return false
		case t == "*" || t == ">":
			if !wild || (t == ">" && more) {
				return false
			}
		case strings.ContainsAny(t, "*>"):
			return false
		}
		if more && rest == "" {
			return false // ends with an empty token
		}
		s = rest
	}
	return true
}

// WithReplySubjects sets the subjects the worker publishes replies to, as
// NATS subject patterns ("_INBOX.>", "scenario.replies.*"). A job whose
// reply subject (a request's, or a durable job's Reply-To header) is
// outside them is refused: not run, logged and counted
// (sfblocks_reply_refused_total), and on the durable path dead-lettered
// with reason reply_refused. System subjects ("$" ...) and the worker's
// own prefix are refused whatever the list says. Defaults to "_INBOX.>".
func WithReplySubjects(patterns ...string) Option {
	return func(c *config) error {
		if len(patterns) == 0 {
			return invalid("reply subjects: give at least one pattern (the default is %q)", defaultReplySubjects[0])
		}
		for _, s := range patterns {
			if !validSubject(s, true) || strings.HasPrefix(s, "$") {
				return invalid("reply subject %q: use a subject pattern such as _INBOX.> (no system subjects)", s)
			}
		}
		c.replySubjects = append([]string(nil), patterns...)
		return nil
	}
}

// refusedReply describes a refused reply subject for logs and dead letters.
func refusedReply(subject, why string) string {
	return fmt.Sprintf("reply subject %q is %s; the job was not run (set the worker's reply subjects, or reply to an inbox)", clipSubject(subject), why)
}

func clipSubject(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
