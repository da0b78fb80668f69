package sensor.rules.shell_network_connect_test

import rego.v1

import data.sensor.rules.shell_network_connect

connect_event(exe, daddr) := {
	"type": "connect",
	"process": {"exe": exe, "pid": 77},
	"net": {"proto": "tcp", "daddr": daddr, "dport": 4444, "direction": "outbound"},
}

test_bash_connecting_out_alerts if {
	alerts := shell_network_connect.alert with input as connect_event("/bin/bash", "203.0.113.9")
	alerts == {{"message": "/bin/bash (pid 77) connected to 203.0.113.9:4444", "daddr": "203.0.113.9", "dport": 4444}}
}

test_loopback_is_quiet if {
	count(shell_network_connect.alert) == 0 with input as connect_event("/bin/bash", "127.0.0.1")
}

test_curl_is_quiet if {
	count(shell_network_connect.alert) == 0 with input as connect_event("/usr/bin/curl", "203.0.113.9")
}
