# Helpers for the container rules. Not a rule: its package is outside sensor.rules.
package sensor.lib.container

import rego.v1

import data.sensor.lib.process

# A raw IP socket or a packet socket (the kernel also reports raw netlink sockets,
# which are ordinary routing/audit plumbing and not this).
raw_or_packet(sc) if sc.family == "AF_PACKET"

raw_or_packet(sc) if {
	sc.family in {"AF_INET", "AF_INET6"}
	bits.and(sc.type, 15) == 3 # SOCK_RAW, with SOCK_NONBLOCK/SOCK_CLOEXEC masked off
}

# A container runtime API socket (docker.sock, containerd.sock, ...), wherever mounted.
runtime_socket(p) if process.basename(p) in data.sensor.lists.runtime_sockets

# nsenter aimed at pid 1's namespaces.
nsenter_pid1 if {
	count(process.names & {"nsenter"}) > 0 # a set operation: cheaper than a named() call
	targets_pid1
}

targets_pid1 if {
	some i, arg in input.process.args
	arg in {"-t", "--target"}
	input.process.args[i + 1] == "1"
}

targets_pid1 if {
	some arg in input.process.args
	arg in {"-t1", "--target=1"}
}

targets_pid1 if {
	some arg in input.process.args
	regex.match(`^(-m|--mount)=?/proc/1/`, arg)
}
