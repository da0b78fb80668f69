package sensor.rules.user_or_group_created_test

import rego.v1

import data.sensor.rules.user_or_group_created as r
import data.sensor.test.fixtures as f

test_useradd_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/sbin/useradd", ["useradd", "-o", "-u", "0", "backup2"])
	count(r.alert) == 1 with input as f.exec("/usr/sbin/usermod", ["usermod", "-aG", "sudo", "eve"])
	count(r.alert) == 1 with input as f.exec("/usr/sbin/chpasswd", ["chpasswd"])
}

test_useradd_under_adduser_reports_once if {
	count(r.alert) == 0 with input as f.with_lineage(f.exec("/usr/sbin/useradd", ["useradd", "eve"]), ["/usr/bin/perl", "/usr/bin/bash"])
}

test_package_install_is_quiet if {
	count(r.alert) == 0 with input as f.with_lineage(f.exec("/usr/sbin/adduser", ["adduser", "--system", "_chrony"]), ["/usr/bin/dash", "/usr/bin/dpkg"])
}

test_id_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/id", ["id", "eve"])
}
