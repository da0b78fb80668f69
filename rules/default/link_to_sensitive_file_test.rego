package sensor.rules.link_to_sensitive_file_test

import rego.v1

import data.sensor.rules.link_to_sensitive_file as r
import data.sensor.test.fixtures as f

test_symlink_to_shadow_fires if {
	ev := f.with_over(f.fileop("symlink", "/usr/bin/ln", "/etc/shadow", "/tmp/samp/l"), {"file": {"target": "/etc/shadow"}})
	alerts := r.alert with input as ev
	alerts == {{"message": "/usr/bin/ln linked /tmp/samp/l to /etc/shadow"}}
}

test_hardlink_and_keys_fire if {
	count(r.alert) == 1 with input as f.fileop("link", "/usr/bin/ln", "/etc/sudoers", "/tmp/s")
	count(r.alert) == 1 with input as f.fileop("symlink", "/usr/bin/ln", "/etc/ssh/ssh_host_ed25519_key", "/var/www/k")
	count(r.alert) == 1 with input as f.fileop("symlink", "/usr/bin/ln", "/root/.ssh/authorized_keys", "/tmp/ak")
}

test_ordinary_links_are_quiet if {
	count(r.alert) == 0 with input as f.fileop("symlink", "/usr/bin/ln", "/usr/bin/python3.11", "/tmp/venv/bin/python")
	count(r.alert) == 0 with input as f.fileop("symlink", "/usr/bin/ln", "/etc/ssh/ssh_host_ed25519_key.pub", "/tmp/k.pub")
}
