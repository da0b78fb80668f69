package sensor.rules.anomaly_new_listen_port

import rego.v1

metadata := {
	"title": "Learned service listens on a new port",
	"description": "A service opened a listening port it never used before: a bind shell, a debug endpoint, a new version.",
	"severity": "medium",
	"events": ["anomaly"],
	"mitre": ["T1571", "T1205"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_listen_port"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
