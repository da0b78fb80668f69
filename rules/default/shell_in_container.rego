package sensor.rules.shell_in_container

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Interactive shell started in a container",
	"description": "A person (or an attacker) getting a shell inside a container; `sh -c` and script runs by entrypoints are not reported.",
	"severity": "medium",
	"events": ["exec"],
	"mitre": ["T1059.004", "T1609"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	process.in_container
	process.is_shell
	interactive
	msg := sprintf("shell %s started in container %s (args: %s)", [
		input.process.exe,
		input.process.container_id,
		concat(" ", input.process.args),
	])
}

# No command (-c) and no script: the shell reads a terminal or stdin.
interactive if {
	not "-c" in input.process.args
	every arg in process.argv_tail {
		startswith(arg, "-")
	}
}

interactive if "-i" in process.argv_tail
