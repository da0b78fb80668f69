package sensor.rules.read_cloud_credentials

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Cloud or cluster credentials read by an unexpected program",
	"description": "AWS, GCP, Azure, kubeconfig and registry credentials are read by their CLIs; other readers are exfiltrating them.",
	"severity": "medium",
	"events": ["open"],
	"mitre": ["T1552.001"],
}

alert contains {"message": msg} if {
	input.type == "open"
	contains(input.file.path, "/.")
	cloud_credential(input.file.path)
	file.ok
	not allowed
	msg := sprintf("%s read %s", [input.process.exe, input.file.path])
}

cloud_credential(p) if {
	some suffix in data.sensor.lists.cloud_credential_suffixes
	endswith(p, suffix)
}

cloud_credential(p) if {
	some dir in data.sensor.lists.cloud_credential_dirs
	contains(p, dir)
	contains(process.basename(p), "credentials")
}

# The CLIs are installed anywhere (~/.local/bin, /opt, snaps): names are enough.
allowed if process.exe_name in data.sensor.lists.cloud_clis

allowed if startswith(process.exe_name, "docker-credential-")

# Python-based CLIs (gcloud, az, aws v1) run as an interpreter with their script.
allowed if {
	process.is_interpreter_exe(input.process.exe)
	some arg in input.process.args
	some marker in data.sensor.lists.cloud_cli_script_markers
	contains(arg, marker)
}

allowed if process.package_manager_lineage
