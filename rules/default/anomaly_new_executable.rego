package sensor.rules.anomaly_new_executable

import rego.v1

metadata := {
	"title": "Service ran a new executable",
	"description": "An executable this service never ran before (a record; new_lineage and the shell rules escalate).",
	"severity": "low",
	"events": ["anomaly"],
	"mitre": ["T1059", "T1204"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_executable"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
