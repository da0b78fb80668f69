package sensor.rules.fileless_exec_memfd_test

import rego.v1

import data.sensor.rules.fileless_exec_memfd as r
import data.sensor.test.fixtures as f

test_memfd_exec_fires if {
	count(r.alert) == 1 with input as f.exec("/memfd:payload (deleted)", ["[kworker/0:1]"])
}

test_runc_clone_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/memfd:runc_cloned:/proc/self/exe (deleted)", ["runc", "init"])
}

# The operator's shell was itself started from a memfd: an ancestor, not this exec.
test_memfd_ancestor_is_quiet if {
	ev := f.with_lineage(f.exec("/usr/bin/grep", ["grep", "x"]), ["/usr/bin/bash", "/memfd:sealed-91173221a7ea (deleted)"])
	count(r.alert) == 0 with input as ev
}
