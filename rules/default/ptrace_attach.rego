package sensor.rules.ptrace_attach

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Process attached to or wrote into another with ptrace",
	"description": "ptrace attach/poke by something other than a debugger is code injection or credential theft from memory.",
	"severity": "high",
	"events": ["ptrace"],
	"mitre": ["T1055.008"],
}

alert contains {"message": msg, "target_pid": input.syscall.target_pid} if {
	input.type == "ptrace"
	input.syscall.request_name in {"PTRACE_ATTACH", "PTRACE_SEIZE", "PTRACE_POKETEXT", "PTRACE_POKEDATA", "PTRACE_POKEUSER", "PTRACE_SETREGS"}
	not process.trusted(data.sensor.lists.debuggers)
	msg := sprintf("%s (pid %d) %s pid %d", [input.process.exe, input.process.pid, input.syscall.request_name, input.syscall.target_pid])
}
