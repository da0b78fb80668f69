package sensor.rules.read_shadow_test

import rego.v1

import data.sensor.rules.read_shadow

open_event(exe, path) := {
	"type": "open",
	"process": {"exe": exe, "pid": 42, "uid": 0, "comm": "x", "container_id": null},
	"file": {"path": path, "flags": ["O_RDONLY"]},
}

test_cat_reading_shadow_alerts if {
	alerts := read_shadow.alert with input as open_event("/usr/bin/cat", "/etc/shadow")
	alerts == {{"message": "/usr/bin/cat read /etc/shadow"}}
}

test_gshadow_alerts if {
	count(read_shadow.alert) == 1 with input as open_event("/usr/bin/python3", "/etc/gshadow")
}

test_allowlisted_reader_is_quiet if {
	count(read_shadow.alert) == 0 with input as open_event("/usr/sbin/sshd", "/etc/shadow")
}

test_other_files_are_quiet if {
	count(read_shadow.alert) == 0 with input as open_event("/usr/bin/cat", "/etc/passwd")
}

test_allowlist_comes_from_data if {
	count(read_shadow.alert) == 0 with input as open_event("/usr/bin/cat", "/etc/shadow")
		with data.sensor.lists.shadow_readers as ["/usr/bin/cat"]
}
