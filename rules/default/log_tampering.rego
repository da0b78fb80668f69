package sensor.rules.log_tampering

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Log file truncated, deleted or replaced",
	"description": "Truncating or removing files under /var/log outside log rotation destroys the evidence of an intrusion.",
	"severity": "high",
	"events": ["open", "unlink", "rename"],
	"mitre": ["T1070.002"],
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/var/log/")
	"O_TRUNC" in input.file.flags
	a := hit
}

alert contains a if {
	input.type in {"unlink", "rename"}
	startswith(input.file.path, "/var/log/")
	a := hit
}

alert contains a if {
	input.type == "rename"
	startswith(input.file.new_path, "/var/log/")
	a := hit
}

hit := {"message": msg} if {
	file.ok
	not process.self_or_ancestor_trusted(data.sensor.lists.log_writers)
	not process.package_manager_lineage
	msg := sprintf("%s %s", [input.process.exe, action])
}

action := sprintf("truncated %s", [input.file.path]) if input.type == "open"

action := file.action if input.type != "open"
