package sensor.rules.ld_preload_modified

import rego.v1

import data.sensor.lib.file

metadata := {
	"title": "/etc/ld.so.preload modified",
	"description": "ld.so.preload injects a library into every dynamically linked program: the userland rootkit's hook.",
	"severity": "critical",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1574.006"],
}

alert contains a if {
	input.type == "open"
	input.file.path == "/etc/ld.so.preload"
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit
}

alert contains a if {
	input.type in {"rename", "unlink", "link", "symlink", "chmod"}
	"/etc/ld.so.preload" in file.changed_paths
	a := hit
}

hit := {"message": msg} if {
	"/etc/ld.so.preload" in file.changed_paths
	file.ok
	msg := sprintf("%s %s", [input.process.exe, file.action])
}
