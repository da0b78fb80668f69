# Helpers about network events. Not a rule: its package is outside sensor.rules.
package sensor.lib.net

import rego.v1

# An address that stays on this host (0.0.0.0 and :: connect to the local host on Linux).
local_addr(addr) if startswith(addr, "127.")

local_addr(addr) if startswith(addr, "::ffff:127.")

local_addr(addr) if addr in {"::1", "0.0.0.0", "::", "localhost"}

# An IP connection (not AF_UNIX) going out.
ip_outbound if {
	input.net.family in {"ipv4", "ipv6"}
	input.net.direction == "outbound"
	is_string(input.net.daddr)
	input.net.daddr != ""
}
