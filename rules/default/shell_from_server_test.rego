package sensor.rules.shell_from_server_test

import rego.v1

import data.sensor.rules.shell_from_server as r
import data.sensor.test.fixtures as f

sh(lineage) := f.with_lineage(f.exec("/usr/bin/dash", ["sh", "-c", "id"]), lineage)

test_shell_under_nginx_fires if {
	count(r.alert) == 1 with input as sh(["/usr/sbin/nginx", "/usr/lib/systemd/systemd"])
}

test_shell_as_grandchild_of_php_fpm_fires if {
	count(r.alert) == 1 with input as sh(["/usr/bin/python3.11", "/usr/sbin/php-fpm8.2", "/usr/lib/systemd/systemd"])
}

test_shell_under_service_java_fires if {
	count(r.alert) == 1 with input as sh(["/usr/lib/jvm/java-17/bin/java", "/usr/lib/systemd/systemd"])
}

test_shell_under_node_started_from_a_shell_is_quiet if {
	count(r.alert) == 0 with input as sh(["/usr/bin/node", "/usr/bin/bash", "/usr/sbin/sshd"])
}

test_shell_under_sshd_is_quiet if {
	count(r.alert) == 0 with input as sh(["/usr/bin/bash", "/usr/sbin/sshd", "/usr/lib/systemd/systemd"])
}

test_non_shell_under_nginx_is_quiet if {
	count(r.alert) == 0 with input as f.with_lineage(f.exec("/usr/bin/gzip", ["gzip"]), ["/usr/sbin/nginx"])
}
