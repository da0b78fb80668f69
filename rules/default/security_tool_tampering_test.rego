package sensor.rules.security_tool_tampering_test

import rego.v1

import data.sensor.rules.security_tool_tampering as r
import data.sensor.test.fixtures as f

test_pkill_sensor_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/pkill", ["pkill", "-9", "sensor"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/killall", ["killall", "auditd"])
}

test_systemctl_stop_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/systemctl", ["systemctl", "stop", "sensor.service"])
	count(r.alert) == 1 with input as f.exec("/usr/sbin/service", ["service", "auditd", "stop"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/systemctl", ["systemctl", "disable", "--now", "falco"])
}

test_auditctl_disable_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/sbin/auditctl", ["auditctl", "-D"])
	count(r.alert) == 1 with input as f.exec("/usr/sbin/auditctl", ["auditctl", "-e", "0"])
}

test_status_and_other_services_are_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/systemctl", ["systemctl", "status", "sensor"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/systemctl", ["systemctl", "stop", "nginx"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/pkill", ["pkill", "-f", "http.server"])
	count(r.alert) == 0 with input as f.exec("/usr/sbin/auditctl", ["auditctl", "-l"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/pkill", ["pkill", "sensors-detect"])
}
