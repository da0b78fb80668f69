package sensor.rules.read_ssh_private_key_test

import rego.v1

import data.sensor.rules.read_ssh_private_key as r
import data.sensor.test.fixtures as f

test_cat_user_key_fires if {
	count(r.alert) == 1 with input as f.read("/usr/bin/cat", "/home/alice/.ssh/id_ed25519")
}

test_host_key_fires if {
	count(r.alert) == 1 with input as f.read("/usr/bin/python3.11", "/etc/ssh/ssh_host_rsa_key")
}

test_ssh_reading_key_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/ssh", "/root/.ssh/id_rsa")
	count(r.alert) == 0 with input as f.read("/usr/sbin/sshd", "/etc/ssh/ssh_host_ed25519_key")
}

test_public_keys_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/root/.ssh/id_rsa.pub")
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/ssh/ssh_host_rsa_key.pub")
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/root/.ssh/known_hosts")
}
