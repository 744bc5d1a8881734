package billing

import (
	"strings"
	"time"

	"github.com/sitelink/sitelink/store"
)

// Why a session ended: the engine records one of these (some followed by
// ": " and detail) as the session's StopReason; KindOf maps them to the
// cancel reason table.
const (
	StopBudget           = "budget reached" // the price of the energy reached policy.budget_stop_at % of the authorized amount
	StopPlugTimeout      = "no vehicle within plug timeout"
	StopNoDraw           = "vehicle drew no energy within plug timeout"
	StopUnplugged        = "vehicle unplugged"
	StopCard             = "StopCallback (card presented)"
	StopCardNotify       = "StopNotify (card presented)"
	StopLocal            = "stopped locally"
	StopFault            = "station fault"
	StopContactorOpen    = "contactor opened outside a stop"
	StopContactorFailed  = "contactor did not close"
	StopShutdown         = "shutdown"
	StopInterrupted      = "interrupted"
	StopDaemonRestart    = "daemon restarted"
	StopStartRefused     = "station unavailable"
	StopStartNoAnswer    = "no card presented before the trigger timed out"
	StopStartFailed      = "Nayax did not accept the start request"
	StopNotAuthorizing   = "authorized after the session was closed"
	StopNayaxCancel      = "Nayax" // + " Cancel" / " Void": Cortina told us
	stopNayaxCancelSpace = StopNayaxCancel + " "
	// StopAuthorizationDead: a DeclineCallback or TimeoutCallback for a
	// session already authorized or charging. Nayax no longer holds the
	// money, so nothing can be settled or cancelled: the session ends
	// with the energy so far and goes to a human.
	StopAuthorizationDead = "authorization ended by Nayax"
)

// AuthorizationDead reports whether a stop reason says Nayax's
// authorization died under a running session (StopAuthorizationDead).
func AuthorizationDead(stopReason string) bool {
	return strings.HasPrefix(stopReason, StopAuthorizationDead)
}

// NayaxCancelled reports whether a stop reason says Nayax itself cancelled
// the transaction (Cortina Cancel/Void): nothing is left to settle or
// cancel.
func NayaxCancelled(stopReason string) bool {
	return strings.HasPrefix(stopReason, stopNayaxCancelSpace)
}

// KindOf is the reason kind of a session that is cancelled: below-minimum
// if any energy flowed, else what its stop reason says.
func KindOf(energyWh float64, stopReason string) ReasonKind {
	if energyWh > 0 {
		return ReasonBelowMinimum
	}
	for _, k := range []struct {
		kind     ReasonKind
		prefixes []string
	}{
		{ReasonNoVehicle, []string{StopPlugTimeout, StopNoDraw}},
		{ReasonStationFault, []string{StopFault, StopContactorFailed, StopContactorOpen, StopStartRefused}},
		{ReasonUnplugged, []string{StopUnplugged}},
		{ReasonUserStop, []string{StopCard, StopCardNotify, StopLocal}},
	} {
		for _, p := range k.prefixes {
			if strings.HasPrefix(stopReason, p) {
				return k.kind
			}
		}
	}
	return ReasonInterrupted
}

// Request kinds: what a session's pending Nayax request (store.Request.Kind)
// asks for.
const (
	KindStart      = "start"
	KindSettlement = "settlement"
	KindCancel     = "cancel"
)

// Settlement retry budget: Nayax accepts an ExternalSettlement within 48 h
// and asks for at most 5 attempts in 24 h after a failure (code 50).
const (
	SettleMaxAttempts = 5
	SettleWindow      = 24 * time.Hour
)

// SettleDeadline is how long after the authorization Nayax still takes a
// settlement (ExternalSettlement: 48 h). Past it nothing is sent: the
// session goes to a human.
const SettleDeadline = 48 * time.Hour

// TooLateToSettle reports whether a settlement for an authorization made
// at authorizedAt may no longer be sent at now.
func TooLateToSettle(authorizedAt, now time.Time) bool {
	return !authorizedAt.IsZero() && now.Sub(authorizedAt) >= SettleDeadline
}

// Spent reports whether a settlement's budget is used up: Nayax refused it
// (50) SettleMaxAttempts times, or SettleWindow has passed since the first
// attempt. Attempts that never got an answer do not count: an outage must
// not spend the budget.
func Spent(r *store.Request, now time.Time) bool {
	return r.Failures >= SettleMaxAttempts || now.Sub(r.FirstAt) >= SettleWindow
}

// AlreadyDone reads Nayax's "already done" answer (28, or 50/51 saying
// "already") to a settlement or cancel that may have reached Nayax before:
// its first attempt's outcome was unknown to us (a lost result, a resend).
// An answer that says the transaction already ended the way the request
// intended completes it (ok true); one that says it ended the other way
// (a settlement answered "already cancelled", a cancel answered "already
// settled/completed") contradicts the request, and why says so for the
// reconciliation.
func AlreadyDone(kind, description string) (ok bool, why string) {
	d := strings.ToLower(description)
	settled := strings.Contains(d, "settl") || strings.Contains(d, "complet") || strings.Contains(d, "captur")
	cancelled := strings.Contains(d, "cancel") || strings.Contains(d, "void") || strings.Contains(d, "revers")
	switch kind {
	case KindSettlement:
		if cancelled && !settled {
			return false, "settlement answered \"already cancelled\": Nayax released the hold, nothing was charged for this session"
		}
		return true, "Nayax: already settled (an earlier attempt of this settlement went through)"
	case KindCancel:
		if settled && !cancelled {
			return false, "cancel answered \"already settled\": the card holder was charged for a session we cancelled"
		}
		return true, "Nayax: already cancelled (an earlier attempt of this cancel went through)"
	}
	return true, "Nayax: already done"
}
