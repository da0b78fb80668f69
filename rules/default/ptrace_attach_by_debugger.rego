package sensor.rules.ptrace_attach_by_debugger

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Debugger attached to a process",
	"description": "gdb/strace attaching is normal for developers but worth a record on production hosts.",
	"severity": "low",
	"events": ["ptrace"],
	"mitre": ["T1055.008"],
}

alert contains {"message": msg, "target_pid": input.syscall.target_pid} if {
	input.type == "ptrace"
	input.syscall.request_name in {"PTRACE_ATTACH", "PTRACE_SEIZE", "PTRACE_POKETEXT", "PTRACE_POKEDATA", "PTRACE_POKEUSER", "PTRACE_SETREGS"}
	process.trusted(data.sensor.lists.debuggers)
	msg := sprintf("%s (pid %d) %s pid %d", [input.process.exe, input.process.pid, input.syscall.request_name, input.syscall.target_pid])
}
