// Package billing is sitelink's money rules, apart from the machinery that
// runs them: what a finished session costs (Amount), whether it is settled
// or cancelled and with which Nayax request (Decide and the request
// builders), why a session ended (the Stop reasons) and how that maps to a
// cancel's reason code (KindOf, Reason, the table in money.go), and how
// long a settlement may be retried (Spent).
//
// Everything here is a pure function of a session, a terminal and a
// tariff: no store transaction, no clock but the one passed in, no I/O, so
// every rule is tested table by table. The edge's engine calls it in the
// transaction that records a session's end.
package billing
