package sensor.rules.shell_in_container

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Interactive shell started in a container",
	"severity": "medium",
	"events": ["exec"],
	"mitre": ["T1059.004"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	process.in_container
	process.is_shell
	msg := sprintf("shell %s started in container %s (args: %s)", [
		input.process.exe,
		input.process.container_id,
		concat(" ", input.process.args),
	])
}
