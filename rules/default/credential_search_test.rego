package sensor.rules.credential_search_test

import rego.v1

import data.sensor.rules.credential_search as r
import data.sensor.test.fixtures as f

test_find_id_rsa_fires if {
	alerts := r.alert with input as f.exec("/usr/bin/find", ["find", "/", "-name", "id_rsa"])
	count(alerts) == 1
	some a in alerts
	a.terms == ["id_rsa"]
}

test_grep_aws_and_private_key_fire if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/grep", ["grep", "-r", "aws_secret_access_key", "/home"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/grep", ["grep", "-rl", "BEGIN RSA PRIVATE KEY", "/"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/rg", ["rg", "-i", "password=", "/srv"])
}

test_grep_in_passwd_file_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/grep", ["grep", "root", "/etc/passwd"])
}

test_ordinary_grep_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/grep", ["grep", "-q", "sensor ready", "/tmp/samp/err.log"])
}

test_other_tools_are_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/ssh-keygen", ["ssh-keygen", "-f", "/root/.ssh/id_rsa"])
}
