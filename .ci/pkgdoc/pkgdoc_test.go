package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	mit := "Copyright (c) 2013 Ben Johnson\n\nPermission is hereby granted, free of charge, to any person\nobtaining a copy ... THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY"
	bsd := "Redistribution and use in source and binary forms, with or without\nmodification ... Redistributions in binary form must reproduce ...\n  * Neither the name of Google LLC nor the names"
	for _, c := range []struct{ text, want string }{
		{mit, "Expat"},
		{bsd, "BSD-3-clause"},
		{strings.Replace(bsd, "Neither the name", "", 1), "BSD-2-clause"},
		{"Apache License\n   Version 2.0, January 2004\n TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "Apache-2.0"},
		{"Eclipse Public License v2.0\nand Eclipse Distribution License v1.0 ... GNU General Public License", "EPL-2.0 or BSD-3-clause"},
		{mit + "\nLicensed under the Apache License, Version 2.0", "Expat and Apache-2.0"},
	} {
		l, err := classify(c.text)
		if err != nil || l.name != c.want {
			t.Errorf("classify(%.40q) = %q, %v; want %q", c.text, l.name, err, c.want)
		}
	}
	for _, text := range []string{
		"GNU GENERAL PUBLIC LICENSE Version 3",
		"Mozilla Public License Version 2.0",
		mit + "\nor, at your option, the GNU General Public License",
	} {
		if l, err := classify(text); err == nil {
			t.Errorf("classify(%.40q) = %q, want an error", text, l.name)
		}
	}
}

func TestHolders(t *testing.T) {
	h := newHolders()
	h.scan(`Copyright (c) 2014-2026, Cristian Maglie.
All rights reserved.
// Copyright 2016 The Gorilla WebSocket Authors.  Use of this source code is governed by a BSD-style
Copyright (c) 2019, 2022, 2023 Jonathan Blake (mochi-co)
      Copyright [yyyy] [name of copyright owner]
 * Copyright (c) 2021 IBM Corp and others.
// Copyright 2013 The Gorilla WebSocket Authors. All rights reserved.
the above copyright notice and this permission notice`)
	want := []string{
		"2014-2026 Cristian Maglie",
		"2013-2016 The Gorilla WebSocket Authors",
		"2019-2023 Jonathan Blake (mochi-co)",
		"2021 IBM Corp and others",
	}
	if got := h.lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n%q\nwant\n%q", got, want)
	}
}

func TestField(t *testing.T) {
	var b bytes.Buffer
	field(&b, "License", "BSD-3-clause\nCopyright 2009\n\n\tindented  \n")
	want := "License: BSD-3-clause\n Copyright 2009\n .\n         indented\n"
	if b.String() != want {
		t.Errorf("field:\n%q\nwant\n%q", b.String(), want)
	}
}

const sampleUsage = `sitelink — edge gateway for paid EV charging (Nayax)

Usage:
  sitelink run -config FILE            run the edge daemon (systemd: sitelink.service)
  sitelink nayaxsim serve|tap|cortina-cancel|txns|requests
                                       a local stand-in for Nayax (Spark DMZ and callbacks)
  sitelink status   [-json]            daemon status (link, epoch, outbox)
  sitelink start -station N [-amount X] Remote Start: the terminal asks for a card
  sitelink hw lines|pin|meter|selftest for the technician commissioning a site
  sitelink sim -station N plug|unplug|fault|clear|power KW|start
                                       drive a simulated station
  sitelink config show [-json]         the running daemon's effective config and where each value came
                                       from (default, file, group, node)

The operating commands find the daemon's socket from -socket PATH, else from
-config FILE (node.api_socket), else /run/sitelink/api.sock.
`

func TestParseUsage(t *testing.T) {
	u := parseUsage(sampleUsage)
	want := []entry{
		{"sitelink run -config FILE", "run the edge daemon (systemd: sitelink.service)"},
		{"sitelink nayaxsim serve|tap|cortina-cancel|txns|requests", "a local stand-in for Nayax (Spark DMZ and callbacks)"},
		{"sitelink status   [-json]", "daemon status (link, epoch, outbox)"},
		{"sitelink start -station N [-amount X]", "Remote Start: the terminal asks for a card"},
		{"sitelink hw lines|pin|meter|selftest", "for the technician commissioning a site"},
		{"sitelink sim -station N plug|unplug|fault|clear|power KW|start", "drive a simulated station"},
		{"sitelink config show [-json]", "the running daemon's effective config and where each value came from (default, file, group, node)"},
	}
	if !reflect.DeepEqual(u.entries, want) {
		t.Errorf("entries:\n%q\nwant\n%q", u.entries, want)
	}
	if len(u.prose) != 1 || !strings.HasPrefix(u.prose[0], "The operating commands") || !strings.HasSuffix(u.prose[0], "api.sock.") {
		t.Errorf("prose: %q", u.prose)
	}
	if got := words(want[6].synopsis); !reflect.DeepEqual(got, []string{"config", "show"}) {
		t.Errorf("words: %q", got)
	}

	// A command's own usage: synopsis continued on "[" lines, and
	// "usage: A | B" alternatives.
	sub := parseUsage(`usage:
  sitelink nayaxsim serve [-listen 127.0.0.1:8090] [-relay URL]
                          [-sign-key-file F]
  sitelink fleet terminals -give NODE
      give a terminal to NODE
`)
	want = []entry{
		{"sitelink nayaxsim serve [-listen 127.0.0.1:8090] [-relay URL] [-sign-key-file F]", ""},
		{"sitelink fleet terminals -give NODE", "give a terminal to NODE"},
	}
	if !reflect.DeepEqual(sub.entries, want) {
		t.Errorf("sub-usage entries:\n%q\nwant\n%q", sub.entries, want)
	}
	alt := parseUsage("usage: sitelink config check FILE | sitelink config show [-json]\n")
	if len(alt.entries) != 2 || alt.entries[1].synopsis != "sitelink config show [-json]" {
		t.Errorf("alternatives: %q", alt.entries)
	}
}

func TestParseFlags(t *testing.T) {
	got := parseFlags("  -config file\n    \tedge config file (default \"/etc/sitelink/sitelink.yaml\")\n  -v\talso print the daemon's logs\n")
	want := []entry{
		{"-config file", `edge config file (default "/etc/sitelink/sitelink.yaml")`},
		{"-v", "also print the daemon's logs"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags:\n%q\nwant\n%q", got, want)
	}
}

func TestRoff(t *testing.T) {
	if got, want := esc(`a-b\c—`), `a\-b\ec\[u2014]`; got != want {
		t.Errorf("esc = %q, want %q", got, want)
	}
	if got, want := synopsisRoff("sitelink run  -config FILE"), `\fBsitelink run \-config \fIFILE\fB\fR`; got != want {
		t.Errorf("synopsisRoff = %q, want %q", got, want)
	}
	if got, want := prose("then `systemctl enable`."), `then \fBsystemctl enable\fR.`; got != want {
		t.Errorf("prose = %q, want %q", got, want)
	}
	if got, want := prose(".dpkg-dist"), `\&.dpkg\-dist`; got != want {
		t.Errorf("prose = %q, want %q", got, want)
	}
}
