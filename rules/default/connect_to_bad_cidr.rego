package sensor.rules.connect_to_bad_cidr

import rego.v1

import data.sensor.lib.net as netlib

metadata := {
	"title": "Connection to a listed bad network",
	"description": "Outbound connection into a range on the operator's block list (by default documentation/bogon ranges no real service lives in).",
	"severity": "high",
	"events": ["connect"],
	"mitre": ["T1071", "T1041"],
}

alert contains {"message": msg, "daddr": input.net.daddr, "cidr": cidr} if {
	input.type == "connect"
	input.net.direction == "outbound"
	netlib.ip_outbound
	not netlib.local_addr(input.net.daddr)
	input.net.daddr != "255.255.255.255"
	some cidr in data.sensor.lists.bad_cidrs
	net.cidr_contains(cidr, input.net.daddr)
	not own_network(cidr)
	msg := sprintf("%s (pid %d) connected to %s:%v in %s", [input.process.exe, input.process.pid, input.net.daddr, input.net.dport, cidr])
}

# A range the host itself has its address in is its local network here
# (lab networks live in TEST-NET ranges), not a bad destination.
own_network(cidr) if {
	is_string(input.net.saddr)
	input.net.saddr != ""
	net.cidr_contains(cidr, input.net.saddr)
}
