package sensor.rules.ptrace_traceme

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "PTRACE_TRACEME outside a debugger",
	"description": "A process asking to be traced when no debugger started it is anti-debugging or a ptrace-based privilege trick.",
	"severity": "medium",
	"events": ["ptrace"],
	"mitre": ["T1622", "T1055.008"],
}

alert contains {"message": msg} if {
	input.type == "ptrace"
	input.syscall.request_name == "PTRACE_TRACEME"
	not process.trusted(data.sensor.lists.debuggers)
	not parent_debugger
	msg := sprintf("%s (pid %d, parent %v) called PTRACE_TRACEME", [input.process.exe, input.process.pid, object.get(input.process, ["lineage", 0], "unknown")])
}

parent_debugger if process.trusted_exe(input.process.lineage[0], data.sensor.lists.debuggers)
