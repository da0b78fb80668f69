package sensor.rules.setuid_bit_set

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Setuid or setgid bit set",
	"description": "A new setuid/setgid file outside package installs is a privilege-escalation backdoor (a root shell copy).",
	"severity": "high",
	"events": ["chmod"],
	"mitre": ["T1548.001"],
}

alert contains {"message": msg} if {
	input.type == "chmod"
	is_number(input.file.mode)
	bits.and(input.file.mode, 3072) != 0
	file.ok
	not process.package_manager_lineage
	msg := sprintf("%s set mode %s on %s", [input.process.exe, file.octal(input.file.mode), input.file.path])
}
