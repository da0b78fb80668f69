package sensor.rules.anomaly_latency_shift

import rego.v1

metadata := {
	"title": "Request latency of an edge shifted",
	"description": "The median request latency of an edge moved far from its learned baseline (by z-score and by a minimum factor): a degradation, a saturated dependency, or a change worth a look.",
	"severity": "low",
	"events": ["anomaly"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "latency_shift"
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
