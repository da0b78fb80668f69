package sensor.rules.nsenter_init_namespaces_test

import rego.v1

import data.sensor.rules.nsenter_init_namespaces as r
import data.sensor.test.fixtures as f

test_nsenter_pid1_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/nsenter", ["nsenter", "-t", "1", "-m", "sh"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/nsenter", ["nsenter", "--target=1", "--all"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/nsenter", ["nsenter", "--mount=/proc/1/ns/mnt", "sh"])
}

test_nsenter_other_pid_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/nsenter", ["nsenter", "-t", "4321", "-n", "ip", "a"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/nsenter", ["nsenter", "--net=/run/netns/test", "ip", "a"])
}

test_container_is_left_to_container_escape_mount_ns if {
	count(r.alert) == 0 with input as f.in_container(f.exec("/usr/bin/nsenter", ["nsenter", "-t", "1", "-m", "sh"]))
}
