// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Process life cycle: exec, fork (new thread groups only), exit (leaders only). */
#include "common.bpf.h"

static __always_inline __u16 clamp_u16(__u32 v)
{
	return v > 0xffff ? 0xffff : v;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!type_enabled(EV_EXEC) || is_self())
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct exec_event *ev = (struct exec_event *)s->buf;
	fill_header(&ev->hdr, EV_EXEC);
	ev->euid = BPF_CORE_READ(task, cred, euid.val);
	ev->egid = BPF_CORE_READ(task, cred, egid.val);
	ev->argc = BPF_CORE_READ(bprm, argc);
	ev->flags = 0;

	/* argv as the new image sees it: NUL-separated strings on its stack */
	__u32 off = sizeof(*ev);
	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u32 args_len = 0;
	if (arg_end > arg_start) {
		unsigned long len = arg_end - arg_start;
		if (len > ARGS_MAX) {
			len = ARGS_MAX;
			ev->flags |= EXEC_ARGS_TRUNCATED;
		}
		len &= (2 * ARGS_MAX - 1); /* a bound the verifier can see */
		if (bpf_probe_read_user(&s->buf[sizeof(*ev)], len, (void *)arg_start) == 0)
			args_len = len;
	}
	ev->args_len = args_len;
	off += args_len;

	/* the executable, canonical: walked from the file being executed */
	bool trunc = false;
	struct file *file = BPF_CORE_READ(bprm, file);
	__u32 n = write_path(s, off, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt),
			     &trunc);
	if (trunc)
		ev->flags |= EXEC_EXE_TRUNCATED;
	ev->exe_len = clamp_u16(n);
	off += n;

	trunc = false;
	n = write_path(s, off, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt), &trunc);
	if (trunc)
		ev->flags |= EXEC_CWD_TRUNCATED;
	ev->cwd_len = clamp_u16(n);
	off += n;

	/* the name as passed to execve (may be relative, or a script's interpreter path) */
	const char *filename = BPF_CORE_READ(bprm, filename);
	long fl = bpf_probe_read_kernel_str(&s->buf[off & SCRATCH_MASK], RAW_PATH_MAX, filename);
	if (fl < 0)
		fl = 0;
	ev->filename_len = fl;
	off += fl;

	if (off > SCRATCH_MASK)
		off = SCRATCH_MASK;
	emit(s->buf, off, EV_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!type_enabled(EV_FORK) || is_self())
		return 0;
	/* a new thread is not a new process */
	if (BPF_CORE_READ(child, tgid) == BPF_CORE_READ(parent, tgid))
		return 0;
	struct fork_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost(EV_FORK);
		return 0;
	}
	fill_header(&ev->hdr, EV_FORK);
	ev->child_pid = BPF_CORE_READ(child, tgid);
	ev->child_tid = BPF_CORE_READ(child, pid);
	ev->child_start_time = BPF_CORE_READ(child, start_time);
	bpf_ringbuf_submit(ev, rb_flags());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	if (!type_enabled(EV_EXIT) || is_self())
		return 0;
	/* one event per process: when its leader exits */
	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0;
	struct exit_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost(EV_EXIT);
		return 0;
	}
	fill_header(&ev->hdr, EV_EXIT);
	ev->exit_code = BPF_CORE_READ(task, exit_code);
	ev->_pad = 0;
	bpf_ringbuf_submit(ev, rb_flags());
	return 0;
}
