package sensor.rules.exec_from_writable_dir_unexpected_parent

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Program executed from a temp directory outside any shell or build",
	"description": "Temp-dir executables are normal under a shell, make or cargo; started by a daemon or server with no shell above it, it is a dropped payload.",
	"severity": "medium",
	"events": ["exec"],
	"mitre": ["T1204.002"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	strings.any_prefix_match(input.process.exe, data.sensor.lists.writable_exec_dirs) # one call; the loop below only on a match
	some dir in data.sensor.lists.writable_exec_dirs
	dir != "/dev/shm/" # exec_from_dev_shm
	startswith(input.process.exe, dir)
	not process.in_container # exec_from_writable_dir_in_container
	not process.shell_ancestor
	not process.build_tool_ancestor
	msg := sprintf("%s executed from %s by %v with no shell or build tool above it", [input.process.exe, dir, object.get(input.process, ["lineage", 0], "unknown")])
}
