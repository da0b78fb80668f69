package sensor.rules.mining_pool_connection_test

import rego.v1

import data.sensor.rules.mining_pool_connection as r
import data.sensor.test.fixtures as f

dns(qname) := {"type": "dns", "process": f.proc("/tmp/xmrig", ["xmrig"]), "net": {"direction": "send", "dport": 53}, "dns": {"id": 1, "response": false, "qname": qname, "qtype": "A", "answers": []}}

test_stratum_port_fires if {
	count(r.alert) == 1 with input as f.connect("/tmp/xmrig", "203.0.113.50", 3333)
}

test_pool_domain_fires if {
	count(r.alert) == 1 with input as dns("pool.supportxmr.com")
	count(r.alert) == 1 with input as dns("xmr-eu1.nanopool.org.")
	count(r.alert) == 1 with input as dns("gulf.moneroocean.stream")
}

test_loopback_and_common_ports_are_quiet if {
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "127.0.0.1", 4444)
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "203.0.113.50", 8000)
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "203.0.113.50", 443)
}

test_ntp_pool_and_responses_are_quiet if {
	count(r.alert) == 0 with input as dns("2.debian.pool.ntp.org")
	count(r.alert) == 0 with input as dns("deb.debian.org")
	count(r.alert) == 0 with input as f.with_over(dns("pool.supportxmr.com"), {"dns": {"response": true}})
}
