package sensor.rules.ssh_nonstandard_port_test

import rego.v1

import data.sensor.rules.ssh_nonstandard_port as r
import data.sensor.test.fixtures as f

test_ssh_to_2222_fires if {
	alerts := r.alert with input as f.connect("/usr/bin/ssh", "198.51.100.7", 2222)
	alerts == {{"message": "/usr/bin/ssh connected to 198.51.100.7:2222", "daddr": "198.51.100.7", "dport": 2222}}
}

test_ssh_to_22_is_quiet if {
	count(r.alert) == 0 with input as f.connect("/usr/bin/ssh", "198.51.100.7", 22)
}

test_other_programs_are_quiet if {
	count(r.alert) == 0 with input as f.connect("/usr/bin/curl", "198.51.100.7", 2222)
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/ssh", "/tmp/ssh-XXXX/agent.1")
}
