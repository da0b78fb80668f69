package sensor.rules.raw_packet_socket_test

import rego.v1

import data.sensor.rules.raw_packet_socket as r
import data.sensor.test.fixtures as f

sock(exe, family, type) := f.syscall("socket", exe, {"name": "socket", "family": family, "type": type, "protocol": 0, "success": true, "result": 5})

test_python_packet_socket_fires if {
	alerts := r.alert with input as sock("/root/.pyenv/versions/3.11.7/bin/python3.11", "AF_PACKET", 3)
	alerts == {{"message": "/root/.pyenv/versions/3.11.7/bin/python3.11 (pid 4242) opened a AF_PACKET socket (type 3)"}}
}

test_raw_inet_socket_with_flags_fires if {
	count(r.alert) == 1 with input as sock("/tmp/x", "AF_INET", 524291)
}

test_allowlisted_and_netlink_are_quiet if {
	count(r.alert) == 0 with input as sock("/usr/bin/tcpdump", "AF_PACKET", 3)
	count(r.alert) == 0 with input as sock("/usr/sbin/dhclient", "AF_PACKET", 2)
	count(r.alert) == 0 with input as sock("/usr/bin/python3.11", "AF_NETLINK", 3)
}

test_container_is_left_to_its_rule if {
	count(r.alert) == 0 with input as f.in_container(sock("/tmp/x", "AF_PACKET", 3))
}
