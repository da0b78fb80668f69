package sensor.rules.account_database_modified_test

import rego.v1

import data.sensor.rules.account_database_modified as r
import data.sensor.test.fixtures as f

test_echo_into_passwd_fires if {
	count(r.alert) == 1 with input as f.open("/usr/bin/bash", "/etc/passwd", ["O_WRONLY", "O_APPEND"])
	count(r.alert) == 1 with input as f.write("/usr/bin/python3.11", "/etc/sudoers.d/zz")
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/shadow", "/etc/shadow")
}

test_account_tools_are_quiet if {
	count(r.alert) == 0 with input as f.fileop("rename", "/usr/sbin/useradd", "/etc/passwd+", "/etc/passwd")
	count(r.alert) == 0 with input as f.write("/usr/sbin/visudo", "/etc/sudoers.tmp")
	count(r.alert) == 0 with input as f.fileop("rename", "/usr/sbin/visudo", "/etc/sudoers.tmp", "/etc/sudoers")
}

test_reads_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/passwd")
}
