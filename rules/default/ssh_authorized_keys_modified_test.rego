package sensor.rules.ssh_authorized_keys_modified_test

import rego.v1

import data.sensor.rules.ssh_authorized_keys_modified as r
import data.sensor.test.fixtures as f

test_append_fires if {
	count(r.alert) == 1 with input as f.open("/usr/bin/bash", "/root/.ssh/authorized_keys", ["O_WRONLY", "O_APPEND", "O_CREAT"])
	count(r.alert) == 1 with input as f.write("/usr/bin/python3.11", "/home/u/.ssh/authorized_keys2")
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/k", "/root/.ssh/authorized_keys")
}

test_read_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/sbin/sshd", "/root/.ssh/authorized_keys")
	count(r.alert) == 0 with input as f.write("/usr/bin/ssh", "/root/.ssh/known_hosts")
}
