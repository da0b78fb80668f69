package sensor.rules.exec_from_dev_shm

import rego.v1

metadata := {
	"title": "Program executed from /dev/shm",
	"description": "/dev/shm is memory-backed shared scratch space, never a build or install directory; droppers use it to stay off disk.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1204.002", "T1036.005"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	startswith(input.process.exe, "/dev/shm/")
	msg := sprintf("%s executed from /dev/shm by uid %d (parent %v)", [input.process.exe, input.process.uid, parent])
}

parent := object.get(input.process, ["lineage", 0], "unknown")
