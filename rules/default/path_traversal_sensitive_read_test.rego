package sensor.rules.path_traversal_sensitive_read_test

import rego.v1

import data.sensor.rules.path_traversal_sensitive_read as r
import data.sensor.test.fixtures as f

traversal(exe, path, raw) := f.with_over(f.read(exe, path), {"file": {"raw_path": raw}})

test_traversal_to_shadow_fires if {
	alerts := r.alert with input as traversal("/usr/bin/cat", "/etc/shadow", "/etc/../etc/shadow")
	alerts == {{"message": "/usr/bin/cat opened /etc/shadow as /etc/../etc/shadow", "raw_path": "/etc/../etc/shadow"}}
}

test_traversal_by_allowlisted_reader_still_fires if {
	count(r.alert) == 1 with input as traversal("/usr/sbin/sshd", "/root/.ssh/id_rsa", "../../../root/.ssh/id_rsa")
}

test_plain_shadow_read_is_quiet if {
	count(r.alert) == 0 with input as traversal("/usr/bin/cat", "/etc/shadow", "/etc/shadow")
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/shadow")
}

test_traversal_to_ordinary_file_is_quiet if {
	count(r.alert) == 0 with input as traversal("/usr/bin/cc", "/tmp/b/main.c", "../b/main.c")
}
