package sensor.rules.user_or_group_created

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "User or group created or changed",
	"description": "A new account, a changed group membership or bulk password change outside package installs is a persistence or privilege step.",
	"severity": "medium",
	"events": ["exec"],
	"mitre": ["T1136.001", "T1098"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	some pname in process.names # inline named(): a call costs more than the loop
	pname in data.sensor.lists.user_management_tools
	not process.ancestor_trusted(data.sensor.lists.package_managers)
	not nested
	msg := sprintf("account change: %s (uid %d)", [process.cmdline, input.process.uid])
}

# adduser runs useradd: report the outer command only.
nested if {
	some a in input.process.lineage
	process.basename(a) in data.sensor.lists.user_management_tools
}

nested if {
	input.process.lineage[0] in {"/usr/bin/perl", "/bin/perl"}
	process.exe_name in {"useradd", "groupadd", "usermod"}
}
