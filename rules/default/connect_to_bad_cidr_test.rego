package sensor.rules.connect_to_bad_cidr_test

import rego.v1

import data.sensor.rules.connect_to_bad_cidr as r
import data.sensor.test.fixtures as f

test_test_net_destination_fires if {
	alerts := r.alert with input as f.connect("/usr/bin/curl", "203.0.113.9", 80)
	alerts == {{"message": "/usr/bin/curl (pid 4242) connected to 203.0.113.9:80 in 203.0.113.0/24", "daddr": "203.0.113.9", "cidr": "203.0.113.0/24"}}
}

test_ipv6_doc_range_fires if {
	ev := f.with_over(f.connect("/usr/bin/curl", "2001:db8::7", 443), {"net": {"family": "ipv6", "saddr": "fd00::2"}})
	count(r.alert) == 1 with input as ev
}

test_operator_list_fires if {
	count(r.alert) == 1 with input as f.connect("/usr/bin/curl", "45.9.148.3", 443)
		with data.sensor.lists.bad_cidrs as ["45.9.148.0/24"]
}

test_ordinary_destinations_are_quiet if {
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "151.101.2.132", 443)
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "127.0.0.1", 8000)
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "0.0.0.0", 8000)
}

# This lab host lives in 192.0.2.0/24: its own network is not a bad destination.
test_own_network_is_quiet if {
	ev := f.with_over(f.connect("/usr/bin/git", "192.0.2.1", 3128), {"net": {"saddr": "192.0.2.2"}})
	count(r.alert) == 0 with input as ev
}
