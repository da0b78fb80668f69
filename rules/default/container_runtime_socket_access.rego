package sensor.rules.container_runtime_socket_access

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "Container runtime socket used by an unexpected program",
	"description": "The Docker/containerd/CRI sockets are root on the host: whoever talks to them can start a privileged container.",
	"severity": "high",
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

hit(p) := {"message": msg, "socket": p} if {
	container.runtime_socket(p)
	not process.in_container # container_runtime_socket_access_in_container
	not process.trusted(data.sensor.lists.runtime_clients)
	msg := sprintf("%s (pid %d) used runtime socket %s", [input.process.exe, input.process.pid, p])
}
