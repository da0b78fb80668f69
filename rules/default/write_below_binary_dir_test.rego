package sensor.rules.write_below_binary_dir_test

import rego.v1

import data.sensor.rules.write_below_binary_dir as r
import data.sensor.test.fixtures as f

test_cp_into_usr_bin_fires if {
	alerts := r.alert with input as f.write("/usr/bin/cp", "/usr/bin/ls")
	alerts == {{"message": "/usr/bin/cp wrote /usr/bin/ls (not a package manager)"}}
}

test_other_dirs_and_ops_fire if {
	count(r.alert) == 1 with input as f.write("/usr/bin/curl", "/usr/local/bin/kubectl")
	count(r.alert) == 1 with input as f.write("/tmp/x", "/lib/x86_64-linux-gnu/libevil.so")
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/ls", "/usr/bin/ls")
	count(r.alert) == 1 with input as f.fileop("unlink", "/usr/bin/rm", "/sbin/auditctl", null)
	count(r.alert) == 1 with input as f.fileop("symlink", "/usr/bin/ln", "/tmp/x", "/usr/local/sbin/x")
	count(r.alert) == 1 with input as f.chmod("/usr/bin/chmod", "/usr/bin/passwd", 493)
}

test_dpkg_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/dpkg", "/usr/bin/ls.dpkg-new")
	count(r.alert) == 0 with input as f.with_lineage(f.fileop("rename", "/usr/bin/mv", "/usr/bin/x.tmp", "/usr/bin/x"), ["/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get"])
}

test_pip_is_quiet if {
	ev := f.with_over(f.write("/usr/bin/python3.11", "/usr/local/bin/black"), {"process": {"args": ["/usr/bin/python3", "-m", "pip", "install", "black"]}})
	count(r.alert) == 0 with input as ev
}

test_make_install_into_usr_local_is_quiet if {
	count(r.alert) == 0 with input as f.with_lineage(f.write("/usr/bin/install", "/usr/local/bin/tool"), ["/usr/bin/make", "/usr/bin/bash"])
}

test_reads_and_other_dirs_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/usr/bin/ls")
	count(r.alert) == 0 with input as f.write("/usr/bin/cc", "/tmp/b/a.out")
	count(r.alert) == 0 with input as f.write("/usr/bin/cc", "/usr/share/doc/x")
}

test_pyc_cache_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/python3.11", "/usr/lib/python3/dist-packages/__pycache__/apt.cpython-311.pyc")
}
