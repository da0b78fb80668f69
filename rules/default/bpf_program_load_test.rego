package sensor.rules.bpf_program_load_test

import rego.v1

import data.sensor.rules.bpf_program_load as r
import data.sensor.test.fixtures as f

load(exe) := f.syscall("bpf", exe, {"name": "bpf", "cmd": "BPF_PROG_LOAD", "prog_name": "probe_x", "success": true})

test_unknown_loader_fires if {
	count(r.alert) == 1 with input as load("/tmp/rootkit")
	count(r.alert) == 1 with input as load("/work/main/target/debug/sensor")
}

test_systemd_and_installed_sensor_are_quiet if {
	count(r.alert) == 0 with input as load("/usr/lib/systemd/systemd")
	count(r.alert) == 0 with input as load("/usr/local/bin/sensor")
	count(r.alert) == 0 with input as load("/usr/sbin/bpftool")
}

test_other_commands_are_quiet if {
	count(r.alert) == 0 with input as f.with_over(load("/tmp/x"), {"syscall": {"cmd": "BPF_MAP_CREATE"}})
}
