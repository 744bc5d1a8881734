package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Row is one line of the table: what sitelink did, the floor measured in
// the same run, and their ratio. Ratio says how it reads: for a time
// (lower is better) it is sitelink/floor, for a rate (higher is better)
// also sitelink/floor; Better says which way is good. A figure without a
// floor (RSS, ledger size) has Ratio 0 and says its target in Floor.
type Row struct {
	Figure   string  `json:"figure"`
	Sitelink string  `json:"sitelink"`
	Floor    string  `json:"floor"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"` // e.g. "≤ 1.3×", "≥ 0.85×"
	Note     string  `json:"note,omitempty"`
}

// Section is one group of rows produced by one runner.
type Section struct {
	Name string
	Rows []Row
}

func writeTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tsitelink\tfloor\tratio\ttarget\tnote")
	fmt.Fprintln(tw, "------\t--------\t-----\t-----\t------\t----")
	for _, r := range rows {
		ratio := "-"
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Figure, r.Sitelink, r.Floor, ratio, dash(r.Target), r.Note)
	}
	return tw.Flush()
}

// writeMarkdown prints the table as the README carries it.
func writeMarkdown(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| figure | sitelink | floor | ratio | target |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := "-"
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		note := ""
		if r.Note != "" {
			note = " (" + r.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s%s | %s | %s | %s |\n", r.Figure, r.Sitelink, note, r.Floor, ratio, dash(r.Target))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeJSON(w io.Writer, rows []Row) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
