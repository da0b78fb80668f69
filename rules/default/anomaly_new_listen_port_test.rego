package sensor.rules.anomaly_new_listen_port_test

import rego.v1

import data.sensor.rules.anomaly_new_listen_port as r

anomaly(fields) := {"type": "anomaly", "host": "h", "anomaly": object.union({"id": "0123456789abcdef", "service": "api:8080", "subject": "x", "score": 3.2, "message": "m", "baseline": {}, "observed": {}}, fields)}

test_fires if {
	alerts := r.alert with input as anomaly({"kind": "new_listen_port", "subject": "4444"})
	count(alerts) == 1
	some a in alerts
	a.anomaly_id == "0123456789abcdef"
}

test_near_miss_is_quiet if {
	count(r.alert) == 0 with input as anomaly({"kind": "new_edge"})
}
