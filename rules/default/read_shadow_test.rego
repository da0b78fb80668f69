package sensor.rules.read_shadow_test

import rego.v1

import data.sensor.rules.read_shadow
import data.sensor.test.fixtures as f

test_cat_reading_shadow_alerts if {
	alerts := read_shadow.alert with input as f.read("/usr/bin/cat", "/etc/shadow")
	alerts == {{"message": "/usr/bin/cat read /etc/shadow"}}
}

test_gshadow_alerts if {
	count(read_shadow.alert) == 1 with input as f.read("/usr/bin/python3", "/etc/gshadow")
}

test_allowlisted_reader_is_quiet if {
	count(read_shadow.alert) == 0 with input as f.read("/usr/sbin/sshd", "/etc/shadow")
}

test_allowlisted_name_outside_system_dirs_alerts if {
	count(read_shadow.alert) == 1 with input as f.read("/tmp/sshd", "/etc/shadow")
}

test_other_files_are_quiet if {
	count(read_shadow.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/passwd")
}

test_failed_open_is_quiet if {
	count(read_shadow.alert) == 0 with input as f.with_over(f.read("/usr/bin/cat", "/etc/shadow"), {"file": {"success": false}})
}

test_package_manager_is_quiet if {
	count(read_shadow.alert) == 0 with input as f.with_lineage(f.read("/usr/bin/cat", "/etc/shadow"), ["/usr/bin/dash", "/usr/bin/dpkg"])
}

test_allowlist_comes_from_data if {
	count(read_shadow.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/shadow")
		with data.sensor.lists.shadow_readers as ["cat"]
}
