package sensor.rules.anomaly_new_edge_from_database

import rego.v1

metadata := {
	"title": "Database server opened a new outbound connection",
	"description": "Databases answer; they rarely call out. A new outbound edge from a database service is a classic sign of exploitation (a reverse shell, data sent out, a pivot).",
	"severity": "high",
	"events": ["anomaly"],
	"mitre": ["T1041", "T1190"],
}

alert contains {"message": msg, "anomaly_id": a.id, "kind": a.kind, "service": a.service, "score": a.score} if {
	input.type == "anomaly"
	a := input.anomaly
	a.kind == "new_edge"
	a.direction == "outbound"
	base := split(split(a.service, ":")[0], "@")[0]
	some prefix in data.sensor.lists.anomaly_database_service_prefixes
	startswith(base, prefix)
	msg := sprintf("%s (score %v)", [a.message, a.score])
}
