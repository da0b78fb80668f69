package sensor.rules.ssh_authorized_keys_modified

import rego.v1

import data.sensor.lib.file

metadata := {
	"title": "SSH authorized_keys modified",
	"description": "Adding a key to authorized_keys gives an attacker a password-less way back in.",
	"severity": "high",
	"events": ["open", "rename", "link", "symlink", "chmod"],
	"mitre": ["T1098.004"],
}

alert contains a if {
	input.type == "open"
	contains(input.file.path, "/.ssh/authorized_keys")
	input.file.flags[_] in {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"} # only writes change files
	a := hit(input.file.path)
}

alert contains a if {
	input.type in {"rename", "link", "symlink", "chmod"}
	some p in file.changed_paths
	a := hit(p)
}

hit(p) := {"message": msg} if {
	p in file.changed_paths
	contains(p, "/.ssh/authorized_keys")
	file.ok
	msg := sprintf("%s %s", [input.process.exe, file.action])
}
