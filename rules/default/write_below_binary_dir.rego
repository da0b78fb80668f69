package sensor.rules.write_below_binary_dir

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Write below a system binary or library directory",
	"description": "Outside package managers nothing should change /bin, /usr/bin, /lib...; a change there is a trojaned binary, a planted library or a rootkit.",
	"severity": "high",
	"events": ["open", "rename", "unlink", "link", "symlink", "chmod"],
	"mitre": ["T1574.006", "T1554", "T1036.005"],
}

# One definition per top-level prefix so the engine can skip other opens cheaply.
alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/usr/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/bin/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/sbin/")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/lib")
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
	file.under(p, data.sensor.lists.binary_dir_prefixes)
	file.ok
	not allowed(p)
	msg := sprintf("%s %s (not a package manager)", [input.process.exe, file.action])
}

allowed(_) if process.package_manager_lineage

allowed(_) if process.trusted(data.sensor.lists.binary_dir_writers)

# Python byte-code caches written next to the modules.
allowed(p) if {
	contains(p, "/__pycache__/")
	endswith(p, ".pyc")
	process.is_interpreter_exe(input.process.exe)
}

# `make install` and friends into /usr/local.
allowed(p) if {
	startswith(p, "/usr/local/")
	process.build_tool_ancestor
}
