package sensor.rules.raw_packet_socket_in_container_test

import rego.v1

import data.sensor.rules.raw_packet_socket_in_container as r
import data.sensor.test.fixtures as f

sock(exe, family, type) := f.syscall("socket", exe, {"name": "socket", "family": family, "type": type, "protocol": 0, "success": true})

test_packet_socket_in_container_fires if {
	count(r.alert) == 1 with input as f.in_container(sock("/usr/bin/python3.11", "AF_PACKET", 3))
}

test_host_is_quiet if {
	count(r.alert) == 0 with input as sock("/usr/bin/python3.11", "AF_PACKET", 3)
	count(r.alert) == 0 with input as f.in_container(sock("/usr/bin/python3.11", "AF_NETLINK", 3))
}
