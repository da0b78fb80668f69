package sensor.rules.mining_pool_connection

import rego.v1

import data.sensor.lib.net as netlib

metadata := {
	"title": "Connection to a cryptocurrency mining pool",
	"description": "Outbound stratum ports or mining-pool domains mean a coin miner is running (resource hijacking).",
	"severity": "high",
	"events": ["connect", "dns"],
	"mitre": ["T1496", "T1071.001"],
}

alert contains {"message": msg, "daddr": input.net.daddr, "dport": input.net.dport} if {
	input.type == "connect"
	input.net.direction == "outbound"
	input.net.dport in data.sensor.lists.mining_ports
	netlib.ip_outbound
	not netlib.local_addr(input.net.daddr)
	msg := sprintf("%s (pid %d) connected to %s:%d, a mining-pool port", [input.process.exe, input.process.pid, input.net.daddr, input.net.dport])
}

alert contains {"message": msg, "qname": input.dns.qname} if {
	input.type == "dns"
	input.dns.response == false
	mining_domain(lower(trim_suffix(input.dns.qname, ".")))
	msg := sprintf("%s (pid %d) looked up %s, a mining-pool domain", [input.process.exe, input.process.pid, input.dns.qname])
}

mining_domain(q) if {
	some d in data.sensor.lists.mining_domains
	q == d
}

mining_domain(q) if {
	some d in data.sensor.lists.mining_domains
	endswith(q, concat("", [".", d]))
}

# A label such as xmr-eu1., pool.xmr., stratum+... or monero-pool.
mining_domain(q) if {
	some label in split(q, ".")
	some prefix in data.sensor.lists.mining_domain_label_prefixes
	startswith(label, prefix)
}
