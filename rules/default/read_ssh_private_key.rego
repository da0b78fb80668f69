package sensor.rules.read_ssh_private_key

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "SSH private key read by a program other than the SSH tools",
	"description": "Private user and host keys are read by ssh, sshd and their helpers; any other reader is stealing them.",
	"severity": "high",
	"events": ["open"],
	"mitre": ["T1552.004"],
}

alert contains a if {
	input.type == "open"
	contains(input.file.path, "/.ssh/id_")
	a := hit
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/ssh/ssh_host_")
	a := hit
}

hit := {"message": msg} if {
	file.is_ssh_private_key(input.file.path)
	file.ok
	not process.trusted(data.sensor.lists.ssh_key_readers)
	not process.package_manager_lineage
	msg := sprintf("%s read SSH private key %s", [input.process.exe, input.file.path])
}
