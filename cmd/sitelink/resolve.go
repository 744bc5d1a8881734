package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sitelink/sitelink/daemon/localapi"
)

// cmdResolve closes a needs-reconciliation session once an operator has
// settled it by hand with Nayax or the customer: the session becomes
// reconciled (final), with the note in its history and its session
// event, and storage.retention archives it like any other final session.
// Flags may come before or after the transaction id.
func cmdResolve(args []string, stdout, stderr io.Writer) error {
	fs := flags("resolve", stderr)
	note := fs.String("note", "", "how the transaction was settled with Nayax or the customer (required; never card data)")
	by := fs.String("by", "", "who resolved it (default: $SUDO_USER or $USER on this controller)")
	asJSON := fs.Bool("json", false, "print the session as JSON")
	socket := socketFlags(fs)
	ids, err := parseInterleaved(fs, args)
	if err != nil {
		return exitCode(2)
	}
	if len(ids) != 1 || strings.TrimSpace(*note) == "" {
		fmt.Fprintln(stderr, "usage: sitelink resolve -note TEXT [-by NAME] [-json] SPARK_TRANSACTION_ID\n"+
			"  closes a session in needs-reconciliation after you settled it with Nayax or the customer")
		return exitCode(2)
	}
	if *by == "" {
		*by = os.Getenv("SUDO_USER")
		if *by == "" {
			*by = os.Getenv("USER")
		}
		if *by != "" {
			*by = "local:" + *by
		}
	}
	path, err := socket()
	if err != nil {
		return err
	}
	s, err := localapi.NewClient(path).Resolve(localapi.ResolveRequest{SparkTransactionID: ids[0], Note: *note, By: *by})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Fprintf(stdout, "session %s (station %s): %s\n", s.SparkTransactionID, s.Station, s.State)
	return nil
}
