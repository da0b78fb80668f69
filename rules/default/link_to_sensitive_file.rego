package sensor.rules.link_to_sensitive_file

import rego.v1

import data.sensor.lib.file

metadata := {
	"title": "Link created to a credential file",
	"description": "A symlink or hard link to shadow, sudoers or a key lets a later write or read through a less protected path (link attacks, exfiltration).",
	"severity": "high",
	"events": ["symlink", "link"],
	"mitre": ["T1003.008", "T1222.002"],
}

alert contains {"message": msg} if {
	input.type in {"symlink", "link"}
	some p in targets
	file.is_sensitive(p)
	file.ok
	msg := sprintf("%s linked %s to %s", [input.process.exe, input.file.new_path, p])
}

targets contains input.file.path if is_string(input.file.path)

targets contains input.file.target if {
	input.type == "symlink"
	is_string(input.file.target)
}
