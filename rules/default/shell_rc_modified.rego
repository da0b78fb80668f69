package sensor.rules.shell_rc_modified

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Shell startup file modified",
	"description": "Code added to .bashrc, .profile, /etc/profile.d or /etc/environment runs at every login: persistence and credential capture.",
	"severity": "medium",
	"events": ["open", "rename", "link", "symlink", "chmod"],
	"mitre": ["T1546.004"],
}

alert contains a if {
	input.type == "open"
	contains(input.file.path, "/.")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type in {"rename", "unlink", "link", "symlink", "chmod"}
	some p in file.changed_paths
	a := hit(p)
}

hit(p) := {"message": msg} if {
	p in file.changed_paths
	rc_file(p)
	input.type != "unlink"
	file.ok
	not process.package_manager_lineage
	msg := sprintf("%s %s", [input.process.exe, file.action])
}

rc_file(p) if {
	some suffix in data.sensor.lists.shell_rc_suffixes
	endswith(p, suffix)
}

rc_file(p) if p in data.sensor.lists.shell_rc_files

rc_file(p) if file.under(p, data.sensor.lists.shell_rc_dirs)
