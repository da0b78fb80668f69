package sensor.rules.container_runtime_socket_access_in_container

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "Container runtime socket used from inside a container",
	"description": "A container with the runtime socket mounted can create a privileged container and own the node.",
	"severity": "critical",
	"events": ["connect", "open"],
	"mitre": ["T1611", "T1609"],
}

alert contains a if {
	input.type == "connect"
	input.net.family == "unix"
	a := hit(input.net.path)
}

alert contains a if {
	input.type == "open"
	contains(input.file.path, ".sock")
	a := hit(input.file.path)
}

hit(p) := {"message": msg, "socket": p, "container_id": input.process.container_id} if {
	container.runtime_socket(p)
	process.in_container
	not process.trusted(data.sensor.lists.runtime_clients)
	msg := sprintf("%s (pid %d) in container %s used runtime socket %s", [input.process.exe, input.process.pid, input.process.container_id, p])
}
