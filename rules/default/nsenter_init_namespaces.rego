package sensor.rules.nsenter_init_namespaces

import rego.v1

import data.sensor.lib.container
import data.sensor.lib.process

metadata := {
	"title": "nsenter into the init process's namespaces",
	"description": "nsenter -t 1 (--mount/--all) from a process the sensor sees as the host is how a privileged container without a visible id breaks out.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1611"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	not process.in_container # container_escape_mount_ns
	container.nsenter_pid1
	msg := sprintf("nsenter into pid 1: %s", [process.cmdline])
}
