package sensor.rules.bpf_program_load

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "BPF program loaded by an unexpected program",
	"description": "eBPF programs can read kernel memory, hide activity and tamper with traffic; only system and security tools should load them.",
	"severity": "medium",
	"events": ["bpf"],
	"mitre": ["T1014", "T1562.001"],
}

alert contains {"message": msg} if {
	input.type == "bpf"
	input.syscall.cmd == "BPF_PROG_LOAD"
	not process.trusted(data.sensor.lists.bpf_loaders)
	not input.process.exe in data.sensor.lists.bpf_loader_paths
	msg := sprintf("%s (pid %d) loaded BPF program %q", [input.process.exe, input.process.pid, object.get(input.syscall, "prog_name", "")])
}
