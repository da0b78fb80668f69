package sensor.rules.exec_from_writable_dir

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Program executed from a world-writable directory",
	"description": "Record of every exec from /tmp, /var/tmp, /dev/shm or /run/user; builds do this all day, so it is low and the exec_from_* rules escalate the suspicious cases.",
	"severity": "low",
	"events": ["exec"],
	"mitre": ["T1204.002"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	strings.any_prefix_match(input.process.exe, data.sensor.lists.writable_exec_dirs) # one call; the loop below only on a match
	some dir in data.sensor.lists.writable_exec_dirs
	startswith(input.process.exe, dir)
	msg := sprintf("%s executed from %s by uid %d", [input.process.exe, dir, input.process.uid])
}
