package sensor.rules.ssh_nonstandard_port

import rego.v1

import data.sensor.lib.net as netlib
import data.sensor.lib.process

metadata := {
	"title": "SSH client connecting to a non-standard port",
	"description": "ssh to a port other than 22 is how tunnels to attacker infrastructure and pivots usually look.",
	"severity": "medium",
	"events": ["connect"],
	"mitre": ["T1572", "T1021.004"],
}

alert contains {"message": msg, "daddr": input.net.daddr, "dport": input.net.dport} if {
	input.type == "connect"
	input.net.direction == "outbound"
	netlib.ip_outbound
	process.trusted(data.sensor.lists.ssh_clients)
	input.net.dport != 22
	msg := sprintf("%s connected to %s:%d", [input.process.exe, input.net.daddr, input.net.dport])
}
