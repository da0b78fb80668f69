package sensor.rules.package_manager_in_container

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Package manager installing software in a running container",
	"description": "Containers should be immutable; installing packages at run time is drift and often an intruder fetching tools.",
	"severity": "medium",
	"events": ["exec"],
	"mitre": ["T1610", "T1105"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	process.in_container
	some tool in tools
	some verb in process.argv_tail
	verb in data.sensor.lists.package_manager_commands[tool]
	not process.ancestor_trusted(data.sensor.lists.package_managers)
	msg := sprintf("%s in container %s", [process.cmdline, input.process.container_id])
}

tools contains name if {
	some name in process.names
	data.sensor.lists.package_manager_commands[name]
}

# pip runs as `python3 /usr/bin/pip install` or `python3 -m pip install`.
tools contains "pip" if process.script_package_manager
