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

# One definition per kind of auth file, so the engine's pre-filter skips the VM for
# every other open.
alert contains a if {
	input.type == "open"
	input.file.path in {"/etc/sudoers", "/etc/security/opasswd"}
	a := hit
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/sudoers.d/")
	a := hit
}

alert contains a if {
	input.type == "open"
	startswith(input.file.path, "/etc/pam.d/")
	a := hit
}

hit := {"message": msg} if {
	file.ok
	not file.open_is_write
	not process.trusted(data.sensor.lists.auth_file_readers)
	not process.package_manager_lineage
	msg := sprintf("%s read %s", [input.process.exe, input.file.path])
}
