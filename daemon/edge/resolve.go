package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// An operator's resolution of a session the engine gave up on
// (needs-reconciliation): after settling the matter with Nayax or the
// customer, the operator closes it with a note (`sitelink resolve` on the
// controller, or the resolve command from the fleet). The session becomes
// reconciled: final, so retention can archive it; until then it stays in
// the ledger and in the needs-reconciliation count.

// errNoResolve marks a resolution refused for the session's state or
// absence, as opposed to a store failure.
var errNoResolve = errors.New("cannot resolve")

// resolution checks r against the ledger and returns the session and the
// transition to commit, or nil when the session is already reconciled (a
// repeated resolve changes nothing). It runs on the engine: the session
// it read cannot change before the returned function commits, since only
// the engine writes sessions and retention never takes one in
// needs-reconciliation.
func (e *engine) resolution(r wire.Resolve, now time.Time) (store.Session, func(tx *store.Tx) error, error) {
	s, err := e.find(func(tx *store.Tx) (store.Session, error) { return tx.Session(r.SparkTransactionId) })
	if errors.Is(err, store.ErrNotFound) {
		return s, nil, fmt.Errorf("%w: no session %s in the ledger (an archived session was final already)", errNoResolve, r.SparkTransactionId)
	}
	if err != nil {
		return s, nil, err
	}
	switch s.State {
	case store.Reconciled:
		return s, nil, nil
	case store.NeedsReconciliation:
	default:
		return s, nil, fmt.Errorf("%w: session %s is %s, not %s: only a session the daemon gave up on is resolved by hand",
			errNoResolve, s.SparkTransactionID, s.State, store.NeedsReconciliation)
	}
	by := r.By
	if by == "" {
		by = "an operator"
	}
	reason := "resolved by " + by + ": " + r.Note
	return s, func(tx *store.Tx) error { return e.transition(tx, &s, store.Reconciled, reason, now) }, nil
}

// resolve closes a needs-reconciliation session from the site (local
// API). It runs on the engine.
func (e *engine) resolve(r wire.Resolve, now time.Time) (store.Session, error) {
	if err := r.Check(); err != nil {
		return store.Session{}, fmt.Errorf("%w: %v", errNoResolve, err)
	}
	s, apply, err := e.resolution(r, now)
	if err != nil || apply == nil {
		return s, err
	}
	if err := e.commit(apply); err != nil {
		return s, err
	}
	return e.find(func(tx *store.Tx) (store.Session, error) { return tx.Session(r.SparkTransactionId) })
}

// resolveCommand: the fleet closes a needs-reconciliation session. The
// transition commits with the command's inbox entry, so a redelivered
// command is answered from the inbox and resolves nothing twice.
func (e *engine) resolveCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	r, err := wire.DecodeResolve(cmd.Body)
	if err != nil {
		return declined(cmd, nayax.CodeValidation, err.Error()), nil
	}
	if r.By == "" {
		r.By = "the fleet"
	}
	s, apply, err := e.resolution(r, now)
	switch {
	case errors.Is(err, errNoResolve) && s.SparkTransactionID == "":
		return declined(cmd, nayax.CodeUnknownTransaction, err.Error()), nil
	case errors.Is(err, errNoResolve):
		return declined(cmd, nayax.CodeValidation, err.Error()), nil
	case err != nil:
		return declined(cmd, nayax.CodeGeneral, "ledger: "+err.Error()), nil
	}
	a := approved()
	a.SparkTransactionId, a.ServiceStationNumber = s.SparkTransactionID, s.Station
	return a, apply
}
