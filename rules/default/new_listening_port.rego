package sensor.rules.new_listening_port

import rego.v1

metadata := {
	"title": "Process listening on a port outside the expected list",
	"description": "A record of new listeners (bind shells, rogue services); informational until the operator lists the expected ports.",
	"severity": "low",
	"events": ["listen"],
	"mitre": ["T1571", "T1205"],
}

alert contains {"message": msg, "port": input.net.sport} if {
	input.type == "listen"
	is_number(input.net.sport)
	input.net.sport > 0
	not input.net.sport in data.sensor.lists.expected_listen_ports
	msg := sprintf("%s (pid %d) listens on %v:%d", [input.process.exe, input.process.pid, input.net.saddr, input.net.sport])
}
