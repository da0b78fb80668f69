package sensor.rules.container_escape_mount_ns

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "Mount or namespace change inside a container",
	"description": "Containers do not mount file systems or switch namespaces at run time; doing so (or nsenter into pid 1) is a breakout attempt.",
	"severity": "critical",
	"events": ["mount", "namespace", "exec"],
	"mitre": ["T1611"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "mount"
	process.in_container
	msg := sprintf("%s in container %s mounted %v on %v (%v)", [input.process.exe, input.process.container_id, object.get(input.syscall, "source", null), object.get(input.syscall, "target", null), object.get(input.syscall, "fstype", null)])
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "namespace"
	process.in_container
	msg := sprintf("%s in container %s called %v", [input.process.exe, input.process.container_id, object.get(input.syscall, "name", "setns/unshare")])
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	process.in_container
	container.nsenter_pid1
	msg := sprintf("nsenter into pid 1 from container %s: %s", [input.process.container_id, process.cmdline])
}
