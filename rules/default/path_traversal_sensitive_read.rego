package sensor.rules.path_traversal_sensitive_read

import rego.v1

import data.sensor.lib.file

metadata := {
	"title": "Credential file opened through a path traversal",
	"description": "No legitimate program spells /etc/shadow or a private key as ../..; this is a traversal exploit or an evasion.",
	"severity": "critical",
	"events": ["open"],
	"mitre": ["T1083", "T1003.008", "T1190"],
}

alert contains {"message": msg, "raw_path": input.file.raw_path} if {
	input.type == "open"
	contains(input.file.raw_path, "../")
	file.is_sensitive(input.file.path)
	msg := sprintf("%s opened %s as %s", [input.process.exe, input.file.path, input.file.raw_path])
}
