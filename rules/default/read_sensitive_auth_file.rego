package sensor.rules.read_sensitive_auth_file

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Sudo or PAM configuration read by an unexpected program",
	"description": "sudoers and PAM files tell an attacker who can escalate and how; only auth programs need them.",
	"severity": "medium",
	"events": ["open"],
	"mitre": ["T1003", "T1548.003"],
}

alert contains {"message": msg} if {
	input.type == "open"
	startswith(input.file.path, "/etc/")
	auth_file(input.file.path)
	file.ok
	not file.open_is_write
	not process.trusted(data.sensor.lists.auth_file_readers)
	not process.package_manager_lineage
	msg := sprintf("%s read %s", [input.process.exe, input.file.path])
}

auth_file(p) if p in {"/etc/sudoers", "/etc/security/opasswd"}

auth_file(p) if startswith(p, "/etc/sudoers.d/")

auth_file(p) if startswith(p, "/etc/pam.d/")
