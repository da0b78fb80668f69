package sensor.rules.write_below_etc_test

import rego.v1

import data.sensor.rules.write_below_etc as r
import data.sensor.test.fixtures as f

test_write_hosts_fires if {
	alerts := r.alert with input as f.write("/usr/bin/tee", "/etc/hosts")
	alerts == {{"message": "/usr/bin/tee wrote /etc/hosts"}}
}

test_rename_into_etc_fires_once if {
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/etc/ssh/sshd_config.new", "/etc/ssh/sshd_config")
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/x", "/etc/ssh/sshd_config")
}

test_package_manager_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/dpkg", "/etc/hosts.dpkg-new")
}

test_known_writers_are_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/sbin/ldconfig", "/etc/ld.so.cache")
	count(r.alert) == 0 with input as f.write("/usr/sbin/dhclient", "/etc/resolv.conf")
}

test_known_writer_elsewhere_fires if {
	count(r.alert) == 1 with input as f.write("/usr/sbin/ldconfig", "/etc/hosts")
}

test_paths_covered_by_specific_rules_are_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/cron.d/x")
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/ld.so.preload")
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/profile.d/x.sh")
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/systemd/system/x.service")
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/passwd")
}

test_reads_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/hosts")
}
