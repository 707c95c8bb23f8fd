package worker

import (
	"errors"
)

// Errors returned by the worker's lifecycle methods and option validation.
var (
	// ErrInvalidOption is wrapped by every option validation error; the
	// message names the option and the accepted range.
	ErrInvalidOption = errors.New("worker: invalid option")
	// ErrAlreadyStarted is returned by [Worker.Start] on a worker that was
	// started before (a Worker is single use: build a new one to restart).
	ErrAlreadyStarted = errors.New("worker: already started (a Worker runs once; create a new one)")
	// ErrNotStarted is returned by [Worker.Ready] before [Worker.Start].
	ErrNotStarted = errors.New("worker: not started")
	// ErrDraining is returned by [Worker.Ready] once shutdown began.
	ErrDraining = errors.New("worker: draining, not taking new jobs")
	// ErrNotConnected is returned by [Worker.Ready] while the NATS
	// connection is down (the client reconnects on its own).
	ErrNotConnected = errors.New("worker: NATS connection is not connected")
	// ErrServiceStopped is returned by [Worker.Ready] when the micro service
	// stopped on its own, e.g. because the NATS connection was closed.
	ErrServiceStopped = errors.New("worker: NATS micro service stopped")
)
