package sensor.rules.anomaly_new_lineage_shell

import rego.v1

metadata := {
	"title": "Service started a shell for the first time",
	"description": "A service that never started a shell during its learning period just did: command injection or a web shell is the usual cause.",
	"severity": "high",
	"events": ["anomaly"],
	"mitre": ["T1059.004", "T1190", "T1505.003"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_lineage"
	a.observed.child in data.sensor.lists.shells
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
