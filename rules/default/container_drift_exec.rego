package sensor.rules.container_drift_exec

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Container executed a binary written after it started",
	"description": "An executable changed after the container's process tree started is not from the image: drift, a dropped tool or payload.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1610", "T1105"],
}

alert contains {"message": msg, "container_id": input.process.container_id} if {
	input.type == "exec"
	input.exec.written_after_parent_start == true
	process.in_container
	msg := sprintf("%s, written after its container's processes started, executed in container %s", [input.process.exe, input.process.container_id])
}
