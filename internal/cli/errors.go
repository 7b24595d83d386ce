package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// usageError is a mistake on the command line: exit code 2. Its message
// already says what to do.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// userError is an error whose message is what the user should read, "what
// is wrong; what to do". It wraps its cause for errors.Is.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

func userf(cause error, format string, args ...any) error {
	return &userError{fmt.Sprintf(format, args...), cause}
}

// report writes err to stderr as exactly one line and returns the exit
// code. dir is the replica directory, for messages that name it.
func report(stderr io.Writer, err error, dir string) int {
	code := exitError
	var (
		ue   *usageError
		uerr *userError
	)
	if errors.As(err, &ue) && !errors.As(err, &uerr) {
		code = exitUsage
	}
	fmt.Fprintf(stderr, "prophet: %s\n", oneLine(describe(err, dir)))
	return code
}

// describe turns the replica's errors into "what is wrong; what to do".
func describe(err error, dir string) string {
	var (
		ue    *usageError
		uerr  *userError
		amb   *replica.AmbiguousIDError
		inUse *replica.InUseError
	)
	switch {
	case errors.As(err, &uerr): // first: it may wrap a usageError
		return uerr.msg
	case errors.As(err, &ue):
		return ue.msg
	case errors.As(err, &amb):
		return strings.TrimPrefix(amb.Error(), "replica: ")
	case errors.Is(err, replica.ErrNoReplica):
		return fmt.Sprintf("no replica in %s; run prophet init to make one, or pass --replica DIR (or set PROPHET_REPLICA) to use another", dir)
	case errors.As(err, &inUse):
		// The replica's message names the holder's pid and what to do.
		return "replica " + strings.TrimPrefix(inUse.Error(), "replica: ")
	case errors.Is(err, replica.ErrExists):
		return fmt.Sprintf("%s already holds a replica; use it, or pass --replica DIR to make one elsewhere", dir)
	case errors.Is(err, replica.ErrCorrupt):
		return fmt.Sprintf("replica %s is damaged: %v; run prophet verify to see what is wrong", dir, err)
	case errors.Is(err, merge.ErrOtherDatabase), errors.Is(err, merge.ErrSameReplica):
		// The merge's message says what to do.
		return strings.TrimPrefix(err.Error(), "merge: ")
	case errors.Is(err, context.Canceled):
		return "interrupted; what was committed before it is kept, and any output is incomplete"
	}
	return err.Error()
}

// oneLine keeps a message to one line, whatever its causes printed.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
