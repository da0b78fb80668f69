package sensor.rules.read_shadow

import rego.v1

metadata := {
	"title": "Credential file read by an unexpected program",
	"description": "A program outside the allowlist opened the shadow password database.",
	"severity": "high",
	"events": ["open"],
	"mitre": ["T1003.008"],
}

alert contains {"message": msg} if {
	input.type == "open"
	input.file.path in {"/etc/shadow", "/etc/gshadow"}
	not input.process.exe in data.sensor.lists.shadow_readers
	msg := sprintf("%s read %s", [input.process.exe, input.file.path])
}
