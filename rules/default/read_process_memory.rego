package sensor.rules.read_process_memory

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Another process's memory or environment read",
	"description": "Reading /proc/N/mem or /proc/N/environ of another process dumps its secrets (keys, tokens in env).",
	"severity": "high",
	"events": ["open"],
	"mitre": ["T1003.007", "T1055"],
}

# One definition per file name, so the engine's pre-filter skips the VM for every
# other /proc read.
alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/proc/")
	endswith(input.file.path, "/mem")
	a := hit
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/proc/")
	endswith(input.file.path, "/environ")
	a := hit
}

hit := {"message": msg, "target_pid": target} if {
	m := regex.find_all_string_submatch_n(`^/proc/([0-9]+)/(?:task/[0-9]+/)?(mem|environ)$`, input.file.path, 1)
	target := to_number(m[0][1])
	not own(target)
	file.ok
	not process.trusted(data.sensor.lists.process_memory_readers)
	msg := sprintf("%s (pid %d) read %s of pid %d", [input.process.exe, input.process.pid, m[0][2], target])
}

own(n) if n == input.process.pid

own(n) if n == input.process.tid
