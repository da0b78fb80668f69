package sensor.rules.kernel_module_load

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Kernel module loaded",
	"description": "Loading a module runs code in the kernel (rootkits); outside boot, udev and package installs it deserves a look.",
	"severity": "high",
	"events": ["module_load", "exec"],
	"mitre": ["T1547.006", "T1014"],
}

# The syscall itself (attempts included: a refused load is still intent).
alert contains {"message": msg} if {
	input.type == "module_load"
	input.syscall.name in {"init_module", "finit_module"}
	not process.self_or_ancestor_trusted(data.sensor.lists.module_loaders)
	not process.package_manager_lineage
	msg := sprintf("%s called %s (%v %v)", [input.process.exe, input.syscall.name, object.get(input.syscall, "path", null), object.get(input.syscall, "params", "")])
}

# insmod/modprobe: seen even where the kernel has no module support.
alert contains {"message": msg} if {
	input.type == "exec"
	loading_command
	not kernel_request
	not process.ancestor_trusted(data.sensor.lists.module_loaders)
	not process.package_manager_lineage
	msg := sprintf("module load command: %s", [process.cmdline])
}

loading_command if {
	some pname in process.names # inline named(): a call costs more than the loop
	pname in data.sensor.lists.module_tools
	not query_only
}

loading_command if {
	count(process.names & {"kmod"}) > 0 # a set operation: cheaper than a named() call
	input.process.args[1] in {"insmod", "modprobe"}
	not query_only
}

query_only if {
	some arg in process.argv_tail
	regex.match(`^(-r|--remove|-D|--show-depends|-c|--showconfig|--show-config|-n|--dry-run|--show|-R|--resolve-alias|--show-modversions|--dump-modversions|--show-exports|-h|--help|-V|--version)$`, arg)
}

# The kernel's own request_module() runs modprobe from a kernel thread (pid 2's child).
kernel_request if input.process.ppid == 2
