package sensor.rules.account_database_modified

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Account database or sudoers changed outside the account tools",
	"description": "Editing passwd/shadow/group/sudoers directly (a uid-0 user, a known password, NOPASSWD) bypasses the tools that validate them.",
	"severity": "high",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1098", "T1136.001", "T1548.003"],
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type in {"rename", "link", "symlink", "chmod"}
	some p in file.changed_paths
	a := hit(p)
}

hit(p) := {"message": msg} if {
	p in file.changed_paths
	account_file(p)
	file.ok
	not process.trusted(data.sensor.lists.account_tools)
	not process.package_manager_lineage
	msg := sprintf("%s %s", [input.process.exe, file.action])
}

account_file(p) if p in data.sensor.lists.account_databases

account_file(p) if file.under(p, data.sensor.lists.account_database_dirs)
