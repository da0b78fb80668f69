package sensor.rules.container_runtime_socket_access_in_container_test

import rego.v1

import data.sensor.rules.container_runtime_socket_access_in_container as r
import data.sensor.test.fixtures as f

test_docker_sock_from_container_fires if {
	count(r.alert) == 1 with input as f.in_container(f.unix_connect("/usr/bin/curl", "/var/run/docker.sock"))
	count(r.alert) == 1 with input as f.in_container(f.unix_connect("/tmp/docker", "/var/run/docker.sock"))
}

test_host_is_quiet if {
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/curl", "/var/run/docker.sock")
}
