package sensor.rules.systemd_unit_modified_test

import rego.v1

import data.sensor.rules.systemd_unit_modified as r
import data.sensor.test.fixtures as f

test_new_service_fires if {
	count(r.alert) == 1 with input as f.write("/usr/bin/bash", "/etc/systemd/system/evil.service")
	count(r.alert) == 1 with input as f.write("/usr/bin/python3.11", "/home/u/.config/systemd/user/x.timer")
	count(r.alert) == 1 with input as f.write("/usr/bin/tee", "/usr/lib/systemd/system/ssh.service.d/override.conf")
	count(r.alert) == 1 with input as f.fileop("symlink", "/usr/bin/ln", "/etc/systemd/system/evil.service", "/etc/systemd/system/multi-user.target.wants/evil.service")
}

test_systemctl_is_quiet if {
	count(r.alert) == 0 with input as f.fileop("symlink", "/usr/bin/systemctl", "/usr/lib/systemd/system/ssh.service", "/etc/systemd/system/multi-user.target.wants/ssh.service")
}

test_package_manager_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/dpkg", "/usr/lib/systemd/system/nginx.service.dpkg-new")
}

test_non_unit_files_are_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/bash", "/etc/systemd/journald.conf")
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/systemd/system/evil.service")
}
