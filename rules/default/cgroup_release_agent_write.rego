package sensor.rules.cgroup_release_agent_write

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Write to a cgroup release_agent or notify_on_release",
	"description": "The cgroup v1 release_agent runs a host command as root: the classic privileged-container escape.",
	"severity": "critical",
	"events": ["open"],
	"mitre": ["T1611"],
}

alert contains a if {
	input.type == "open"
	endswith(input.file.path, "/release_agent")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit
}

alert contains a if {
	input.type == "open"
	endswith(input.file.path, "/notify_on_release")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit
}

hit := {"message": msg} if {
	file.open_is_write
	file.ok
	not process.trusted(data.sensor.lists.release_agent_writers)
	msg := sprintf("%s wrote %s", [input.process.exe, input.file.path])
}
