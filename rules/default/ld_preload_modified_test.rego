package sensor.rules.ld_preload_modified_test

import rego.v1

import data.sensor.rules.ld_preload_modified as r
import data.sensor.test.fixtures as f

test_write_fires if {
	alerts := r.alert with input as f.write("/usr/bin/bash", "/etc/ld.so.preload")
	alerts == {{"message": "/usr/bin/bash wrote /etc/ld.so.preload"}}
}

test_rename_onto_fires if {
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/p", "/etc/ld.so.preload")
}

test_read_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/etc/ld.so.preload")
	count(r.alert) == 0 with input as f.write("/usr/sbin/ldconfig", "/etc/ld.so.cache")
}
