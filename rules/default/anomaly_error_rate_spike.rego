package sensor.rules.anomaly_error_rate_spike

import rego.v1

metadata := {
	"title": "Request failures on an edge spiked",
	"description": "The failure fraction of the recent requests on an edge is well above its learned rate.",
	"severity": "medium",
	"events": ["anomaly"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "error_rate_spike"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
