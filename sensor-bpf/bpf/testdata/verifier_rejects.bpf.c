// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * A program the verifier must reject, for the loader's error-path test: it
 * dereferences the user pointer openat() was given as if it were kernel
 * memory, instead of using bpf_probe_read_user. It includes the common header
 * so it has the same globals and maps as the real objects and fails only
 * where intended.
 */
#include "common.bpf.h"

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	const char *filename = (const char *)ctx->args[1];
	return filename[0] == '/'; /* a scalar is not a pointer: "invalid mem access" */
}
