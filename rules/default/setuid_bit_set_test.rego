package sensor.rules.setuid_bit_set_test

import rego.v1

import data.sensor.rules.setuid_bit_set as r
import data.sensor.test.fixtures as f

test_chmod_4755_fires if {
	alerts := r.alert with input as f.chmod("/usr/bin/chmod", "/tmp/samp/f", 2541)
	alerts == {{"message": "/usr/bin/chmod set mode 4755 on /tmp/samp/f"}}
}

test_setgid_fires if {
	count(r.alert) == 1 with input as f.chmod("/usr/bin/chmod", "/tmp/x", 1517)
}

test_plain_chmod_is_quiet if {
	count(r.alert) == 0 with input as f.chmod("/usr/bin/chmod", "/tmp/b/a.out", 493)
	count(r.alert) == 0 with input as f.chmod("/usr/bin/chmod", "/tmp/sticky", 1023)
}

test_package_manager_is_quiet if {
	count(r.alert) == 0 with input as f.chmod("/usr/bin/dpkg", "/usr/bin/sudo", 2541)
}
