package sensor.rules.fileless_exec_memfd

import rego.v1

metadata := {
	"title": "Fileless execution from a memfd",
	"description": "A program executed from an anonymous memory file leaves nothing on disk to scan; only runc's self-clone does this legitimately.",
	"severity": "critical",
	"events": ["exec"],
	"mitre": ["T1620", "T1027.011"],
}

# Only the executed file: an ancestor started from a memfd (lineage) is not this event.
alert contains {"message": msg} if {
	input.type == "exec"
	startswith(input.process.exe, "/memfd:")
	not allowed
	msg := sprintf("pid %d executed %s (argv: %s)", [input.process.pid, input.process.exe, concat(" ", input.process.args)])
}

allowed if {
	some prefix in data.sensor.lists.memfd_exe_allowed_prefixes
	startswith(input.process.exe, prefix)
}
