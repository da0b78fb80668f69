package sensor.rules.package_manager_in_container_test

import rego.v1

import data.sensor.rules.package_manager_in_container as r
import data.sensor.test.fixtures as f

test_apt_install_in_container_fires if {
	count(r.alert) == 1 with input as f.in_container(f.exec("/usr/bin/apt-get", ["apt-get", "install", "-y", "nmap"]))
	count(r.alert) == 1 with input as f.in_container(f.exec("/sbin/apk", ["apk", "add", "curl"]))
	count(r.alert) == 1 with input as f.in_container(f.exec("/usr/bin/python3.11", ["python3", "-m", "pip", "install", "requests"]))
}

test_host_install_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/apt-get", ["apt-get", "install", "-y", "nmap"])
}

test_queries_are_quiet if {
	count(r.alert) == 0 with input as f.in_container(f.exec("/usr/bin/dpkg", ["dpkg", "-l"]))
	count(r.alert) == 0 with input as f.in_container(f.exec("/usr/bin/apt-cache", ["apt-cache", "policy", "bash"]))
}

test_dpkg_under_apt_reports_once if {
	count(r.alert) == 0 with input as f.in_container(f.with_lineage(f.exec("/usr/bin/dpkg", ["dpkg", "--unpack", "x.deb"]), ["/usr/bin/apt-get"]))
}
