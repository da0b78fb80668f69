package sensor.rules.raw_packet_socket_in_container

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "Raw or packet socket opened in a container",
	"description": "A container sniffing or forging packets (ARP spoofing, traffic capture of neighbours) is an attack on the node network.",
	"severity": "high",
	"events": ["socket"],
	"mitre": ["T1040", "T1557.002"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "socket"
	process.in_container
	container.raw_or_packet(input.syscall)
	not process.trusted(data.sensor.lists.raw_socket_users)
	msg := sprintf("%s (pid %d) opened a %s socket in container %s", [input.process.exe, input.process.pid, input.syscall.family, input.process.container_id])
}
