package sensor.rules.cron_modified

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Cron job created or changed outside crontab",
	"description": "Writing cron files directly (not through crontab or a package) is a standard persistence technique.",
	"severity": "high",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1053.003"],
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/var/spool/")
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
	cron_path(p)
	file.ok
	not process.trusted(data.sensor.lists.cron_writers)
	not process.package_manager_lineage
	msg := sprintf("%s %s", [input.process.exe, file.action])
}

cron_path(p) if p in data.sensor.lists.cron_files

cron_path(p) if file.under(p, data.sensor.lists.cron_prefixes)
