package sensor.rules.systemd_unit_modified

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Systemd unit created or changed outside systemctl",
	"description": "A new or edited service, timer or drop-in written by hand or by a dropper is persistence that survives reboots.",
	"severity": "high",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1543.002", "T1053.006"],
}

alert contains a if {
	input.type == "open"
	contains(input.file.path, "/systemd/")
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
	unit_dir(p)
	unit_file(p)
	file.ok
	not process.trusted(data.sensor.lists.systemd_unit_writers)
	not process.package_manager_lineage
	msg := sprintf("%s %s", [input.process.exe, file.action])
}

unit_dir(p) if file.under(p, data.sensor.lists.systemd_unit_dirs)

unit_dir(p) if contains(p, "/.config/systemd/user/")

unit_file(p) if {
	some suffix in data.sensor.lists.systemd_unit_suffixes
	endswith(p, suffix)
}

# An enablement symlink in a *.wants/ directory.
unit_file(p) if regex.match(`\.(wants|requires)/[^/]+$`, p)
