package sensor.rules.secure_delete_tool_test

import rego.v1

import data.sensor.rules.secure_delete_tool as r
import data.sensor.test.fixtures as f

test_shred_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/shred", ["shred", "-u", "/var/log/auth.log"])
}

test_dd_onto_disk_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/dd", ["dd", "if=/dev/zero", "of=/dev/sda", "bs=1M"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/dd", ["dd", "if=/dev/urandom", "of=/dev/nvme0n1"])
}

test_dd_to_file_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/dd", ["dd", "if=/dev/zero", "of=/tmp/img", "bs=1M", "count=1"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/rm", ["rm", "-f", "/tmp/x"])
}
