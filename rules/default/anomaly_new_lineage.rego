package sensor.rules.anomaly_new_lineage

import rego.v1

metadata := {
	"title": "Service started a process it never started before",
	"description": "A parent -> child executable pair never seen in this service: new code paths, or an attacker running tools through the service.",
	"severity": "medium",
	"events": ["anomaly"],
	"mitre": ["T1059"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_lineage"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
