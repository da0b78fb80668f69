package sensor.rules.exec_from_writable_dir_unexpected_parent_test

import rego.v1

import data.sensor.rules.exec_from_writable_dir_unexpected_parent as r
import data.sensor.test.fixtures as f

test_tmp_exec_under_php_fpm_fires if {
	count(r.alert) == 1 with input as f.with_lineage(f.exec("/tmp/x", ["/tmp/x"]), ["/usr/sbin/php-fpm8.2", "/usr/lib/systemd/systemd"])
}

test_tmp_exec_from_shell_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/tmp/b/a.out", ["./a.out"])
}

test_tmp_exec_from_cargo_test_is_quiet if {
	l := ["/work/target/debug/deps/sensor_e2e-1a2b", "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo", "/memfd:sealed-91173221a7ea (deleted)"]
	count(r.alert) == 0 with input as f.with_lineage(f.exec("/tmp/t/prog", ["prog"]), l)
}

test_tmp_exec_from_make_is_quiet if {
	count(r.alert) == 0 with input as f.with_lineage(f.exec("/tmp/t/prog", ["prog"]), ["/usr/bin/make"])
}

test_in_container_is_left_to_its_rule if {
	count(r.alert) == 0 with input as f.in_container(f.with_lineage(f.exec("/tmp/x", ["x"]), ["/usr/bin/containerd-shim-runc-v2"]))
}
