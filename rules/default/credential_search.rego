package sensor.rules.credential_search

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "File search for private keys or cloud credentials",
	"description": "Searching the disk for key files, cloud credentials or passwords is credential hunting, not development.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1552.001", "T1083"],
}

alert contains {"message": msg, "terms": found} if {
	input.type == "exec"
	some pname in process.names # inline named(): a call costs more than the loop
	pname in data.sensor.lists.credential_search_tools
	found := sort(terms)
	count(found) > 0
	msg := sprintf("%s searched for %s: %s", [input.process.exe, concat(", ", found), process.cmdline])
}

terms contains term if {
	some arg in process.argv_tail
	some term in data.sensor.lists.credential_search_terms
	contains(lower(arg), term)
}

# Password words only count as a search term, not inside a path (grep x /etc/passwd).
terms contains term if {
	some arg in process.argv_tail
	not contains(arg, "/")
	some term in data.sensor.lists.credential_search_weak_terms
	contains(lower(arg), term)
}
