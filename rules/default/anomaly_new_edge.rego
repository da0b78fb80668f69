package sensor.rules.anomaly_new_edge

import rego.v1

metadata := {
	"title": "New network edge for a learned service",
	"description": "A service talked to a peer it never talked to during its learning period (or since): lateral movement, exfiltration or a new dependency; accept it with sensor baseline accept ID.",
	"severity": "medium",
	"events": ["anomaly"],
	"mitre": ["T1021", "T1041"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_edge"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
