package sensor.rules.shell_network_connect

import rego.v1

import data.sensor.lib.net as netlib
import data.sensor.lib.process

metadata := {
	"title": "Shell process opened an outbound network connection",
	"description": "Shells rarely connect out themselves; this is the shape of a reverse shell.",
	"severity": "critical",
	"events": ["connect"],
	"mitre": ["T1059.004", "T1071"],
}

alert contains {"message": msg, "daddr": input.net.daddr, "dport": input.net.dport} if {
	input.type == "connect"
	input.net.direction == "outbound"
	netlib.ip_outbound
	process.is_shell
	not netlib.local_addr(input.net.daddr)
	msg := sprintf("%s (pid %d) connected to %s:%d", [
		input.process.exe,
		input.process.pid,
		input.net.daddr,
		input.net.dport,
	])
}
