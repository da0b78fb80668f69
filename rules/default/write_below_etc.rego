package sensor.rules.write_below_etc

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Write below /etc by a program that is not a package manager",
	"description": "System configuration changed outside package management and the known writers; the specific persistence rules cover cron, systemd, shell rc and account files.",
	"severity": "medium",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1222.002", "T1543", "T1037"],
}

lists := data.sensor.lists

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type in {"rename", "unlink", "chmod"}
	startswith(input.file.path, "/etc/")
	a := hit(input.file.path)
}

alert contains a if {
	input.type in {"rename", "link", "symlink"}
	startswith(input.file.new_path, "/etc/")
	a := hit(input.file.new_path)
}

hit(p) := {"message": msg} if {
	p in file.changed_paths
	startswith(p, "/etc/")
	file.ok
	not covered_elsewhere(p)
	not p in lists.etc_always_ignored
	not process.package_manager_lineage
	not known_writer(p)
	msg := sprintf("%s %s", [input.process.exe, file.action])
}

known_writer(p) if {
	some name, prefixes in lists.etc_writers
	process.trusted({name})
	file.under(p, prefixes)
}

# Account tools write /etc/passwd, /etc/shadow... through temporary siblings
# (/etc/passwd+, /etc/nshadow); account_database_modified judges the result.
known_writer(_) if process.trusted(lists.account_tools)

# Covered by cron_modified, systemd_unit_modified, shell_rc_modified,
# ld_preload_modified and account_database_modified.
covered_elsewhere(p) if startswith(p, "/etc/cron")

covered_elsewhere(p) if file.under(p, lists.systemd_unit_dirs)

covered_elsewhere(p) if p in lists.shell_rc_files

covered_elsewhere(p) if file.under(p, lists.shell_rc_dirs)

covered_elsewhere(p) if p == "/etc/ld.so.preload"

covered_elsewhere(p) if p in lists.account_databases

covered_elsewhere(p) if file.under(p, lists.account_database_dirs)
