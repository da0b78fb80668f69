package sensor.rules.raw_packet_socket

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "Raw or packet socket opened on the host",
	"description": "AF_PACKET and raw IP sockets sniff traffic and forge packets; outside DHCP, ping and capture tools they mean a sniffer or backdoor.",
	"severity": "medium",
	"events": ["socket"],
	"mitre": ["T1040", "T1205"],
}

alert contains {"message": msg} if {
	input.type == "socket"
	container.raw_or_packet(input.syscall)
	not process.in_container # raw_packet_socket_in_container
	not process.trusted(data.sensor.lists.raw_socket_users)
	msg := sprintf("%s (pid %d) opened a %s socket (type %d)", [input.process.exe, input.process.pid, input.syscall.family, input.syscall.type])
}
