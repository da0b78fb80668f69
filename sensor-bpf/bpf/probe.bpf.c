// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Feature probes: one trivial program per program type. `sensor probe` loads
 * (and where it matters attaches) each one, because whether a kernel allows
 * fentry, BPF LSM or kprobes is only known by trying: config files and
 * /proc/kallsyms do not say whether ftrace trampolines or the LSM hook work.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ring SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int probe_raw_tracepoint(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(probe_tp_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	/* touches the ring buffer so the map type is exercised at load */
	bpf_ringbuf_query(&probe_ring, BPF_RB_AVAIL_DATA);
	return 0;
}

SEC("fentry/do_unlinkat")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(probe_lsm, struct linux_binprm *bprm, int ret)
{
	return ret;
}

SEC("kprobe/do_unlinkat")
int probe_kprobe(struct pt_regs *ctx)
{
	return 0;
}
