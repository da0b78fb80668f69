package sensor.rules.read_sensitive_auth_file_test

import rego.v1

import data.sensor.rules.read_sensitive_auth_file as r
import data.sensor.test.fixtures as f

test_cat_sudoers_fires if {
	count(r.alert) == 1 with input as f.read("/usr/bin/cat", "/etc/sudoers")
}

test_sudoers_d_and_pam_fire if {
	count(r.alert) == 1 with input as f.read("/usr/bin/less", "/etc/sudoers.d/90-cloud")
	count(r.alert) == 1 with input as f.read("/usr/bin/python3.11", "/etc/pam.d/common-auth")
	count(r.alert) == 1 with input as f.read("/usr/bin/cat", "/etc/security/opasswd")
}

test_sudo_reading_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/sudo", "/etc/sudoers")
	count(r.alert) == 0 with input as f.read("/usr/sbin/cron", "/etc/pam.d/cron")
}

test_passwd_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/passwd")
}

test_write_is_left_to_write_rules if {
	count(r.alert) == 0 with input as f.write("/usr/bin/vim", "/etc/sudoers")
}
