package sensor.rules.secure_delete_tool

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Secure-delete tool or raw disk wipe",
	"description": "shred/wipe/srm destroy evidence; dd onto a block device destroys the system (wiper malware, ransomware finale).",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1070.004", "T1485", "T1561.001"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	some pname in process.names # inline named(): a call costs more than the loop
	pname in data.sensor.lists.secure_delete_tools
	msg := sprintf("secure delete: %s", [process.cmdline])
}

alert contains {"message": msg} if {
	input.type == "exec"
	count(process.names & {"dd"}) > 0 # a set operation: cheaper than a named() call
	some arg in process.argv_tail
	regex.match(`^of=/dev/(sd[a-z]|nvme[0-9]|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk[0-9]|dm-[0-9]|mapper/|md[0-9])`, arg)
	msg := sprintf("disk overwrite: %s", [process.cmdline])
}
