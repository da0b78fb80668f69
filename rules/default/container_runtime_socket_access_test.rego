package sensor.rules.container_runtime_socket_access_test

import rego.v1

import data.sensor.rules.container_runtime_socket_access as r
import data.sensor.test.fixtures as f

test_curl_docker_sock_fires if {
	alerts := r.alert with input as f.unix_connect("/usr/bin/curl", "/run/docker.sock")
	alerts == {{"message": "/usr/bin/curl (pid 4242) used runtime socket /run/docker.sock", "socket": "/run/docker.sock"}}
}

test_other_runtime_sockets_fire if {
	count(r.alert) == 1 with input as f.unix_connect("/usr/bin/python3.11", "/run/containerd/containerd.sock")
	count(r.alert) == 1 with input as f.open("/usr/bin/cat", "/var/run/docker.sock", ["O_RDONLY"])
}

test_docker_cli_is_quiet if {
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/docker", "/run/docker.sock")
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/kubelet", "/run/containerd/containerd.sock")
}

test_other_sockets_are_quiet if {
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/curl", "/run/systemd/private")
	count(r.alert) == 0 with input as f.unix_connect("/usr/bin/curl", "/tmp/docker.sock.bak")
}

test_container_is_left_to_its_rule if {
	count(r.alert) == 0 with input as f.in_container(f.unix_connect("/usr/bin/curl", "/var/run/docker.sock"))
}
