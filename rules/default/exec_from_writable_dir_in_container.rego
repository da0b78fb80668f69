package sensor.rules.exec_from_writable_dir_in_container

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Program executed from a temp directory inside a container",
	"description": "Container images ship their binaries; a program run from /tmp or /var/tmp in a container was dropped at run time.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1204.002", "T1610"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	process.in_container
	strings.any_prefix_match(input.process.exe, data.sensor.lists.writable_exec_dirs) # one call; the loop below only on a match
	some dir in data.sensor.lists.writable_exec_dirs
	dir != "/dev/shm/" # exec_from_dev_shm
	startswith(input.process.exe, dir)
	msg := sprintf("%s executed from %s in container %s", [input.process.exe, dir, input.process.container_id])
}
