package sensor.rules.read_shadow

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Credential file read by an unexpected program",
	"description": "Only login, password and account tools read the shadow databases; anything else is credential dumping.",
	"severity": "high",
	"events": ["open"],
	"mitre": ["T1003.008"],
}

alert contains {"message": msg} if {
	input.type == "open"
	input.file.path in {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"}
	not input.file.success == false
	not process.trusted(data.sensor.lists.shadow_readers)
	not process.package_manager_lineage
	msg := sprintf("%s read %s", [input.process.exe, input.file.path])
}
