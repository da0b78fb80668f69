package sensor.rules.exec_from_writable_dir

import rego.v1

metadata := {
	"title": "Program executed from a world-writable directory",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1204.002"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	some dir in data.sensor.lists.writable_exec_dirs
	startswith(input.process.exe, dir)
	msg := sprintf("%s executed from %s by uid %d", [input.process.exe, dir, input.process.uid])
}
