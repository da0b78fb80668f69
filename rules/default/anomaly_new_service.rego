package sensor.rules.anomaly_new_service

import rego.v1

metadata := {
	"title": "Service first seen after the learning period",
	"description": "A service (a new binary, container or unit talking on the network) appeared after the sensor learned this host.",
	"severity": "low",
	"events": ["anomaly"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_service"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
