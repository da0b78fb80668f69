// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Process life cycle: exec, fork (new thread groups only), exit (leaders only). */
#include "common.bpf.h"

/* The inode's change time moved between kernels: i_ctime (< 6.6),
 * __i_ctime (6.6-6.10), i_ctime_sec/i_ctime_nsec (6.11+). */
struct inode___ctime_pre611 {
	struct timespec64 __i_ctime;
};
struct inode___ctime_pre66 {
	struct timespec64 i_ctime;
};

static __always_inline __u64 inode_ctime_ns(const struct inode *inode)
{
	__s64 sec = 0;
	__s64 nsec = 0;
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		sec = BPF_CORE_READ(inode, i_ctime_sec);
		nsec = BPF_CORE_READ(inode, i_ctime_nsec);
	} else if (bpf_core_field_exists(((struct inode___ctime_pre611 *)inode)->__i_ctime)) {
		const struct inode___ctime_pre611 *i = (const void *)inode;
		sec = BPF_CORE_READ(i, __i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, __i_ctime.tv_nsec);
	} else if (bpf_core_field_exists(((struct inode___ctime_pre66 *)inode)->i_ctime)) {
		const struct inode___ctime_pre66 *i = (const void *)inode;
		sec = BPF_CORE_READ(i, i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, i_ctime.tv_nsec);
	}
	if (sec <= 0)
		return 0;
	return (__u64)sec * 1000000000ULL + (__u64)nsec;
}

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
	/* read now: a short-lived dropper is gone before user space could stat it */
	ev->exe_ctime_ns = inode_ctime_ns(BPF_CORE_READ(file, f_inode));
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

/* ---- security-relevant syscalls (struct syscall_event) ---- */

#define AF_PACKET_ 17
#define AF_UNIX_ 1
#define UNIX_PATH_MAX_ 108
#define EACCES_ 13
#define EPERM_ 1
#define SOCK_RAW_ 3
#define SOCK_TYPE_MASK_ 0xf
#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000
#define BPF_PROG_LOAD_ 5
#define PTRACE_TRACEME_ 0
#define PTRACE_POKETEXT_ 4
#define PTRACE_POKEDATA_ 5
#define PTRACE_POKEUSER_ 6
#define PTRACE_SETREGS_ 13
#define PTRACE_ATTACH_ 16
#define PTRACE_SEIZE_ 0x4206

struct sc_pending {
	__u32 type;
	__u32 nr;
	__u64 args[6];
	__u16 flags;
};

/* The syscall in flight on each thread (type 0: none); see file.bpf.c. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sc_pending);
} sc_pending_map SEC(".maps");

/*
 * `nargs` must be a constant: the kernel refuses to attach a program that
 * may read past the tracepoint's record (EACCES), and a syscall's record
 * holds only its own arguments.
 */
static __always_inline int sc_stash(struct trace_event_raw_sys_enter *ctx, __u32 type, __u16 flags, const int nargs)
{
	if (!type_enabled(type) || is_self())
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct sc_pending *p = bpf_task_storage_get(&sc_pending_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return 0;
	p->type = type;
	p->nr = (__u32)ctx->id;
	p->flags = flags;
	/* ctx may only be read at constant offsets: no loop */
	__builtin_memset(p->args, 0, sizeof(p->args));
	if (nargs > 0)
		p->args[0] = ctx->args[0];
	if (nargs > 1)
		p->args[1] = ctx->args[1];
	if (nargs > 2)
		p->args[2] = ctx->args[2];
	if (nargs > 3)
		p->args[3] = ctx->args[3];
	if (nargs > 4)
		p->args[4] = ctx->args[4];
	return 0;
}

static __always_inline __u16 user_str(struct scratch *s, __u32 off, __u64 uptr, __u32 max)
{
	if (!uptr)
		return 0;
	long n = bpf_probe_read_user_str(&s->buf[off & SCRATCH_MASK], max, (const void *)uptr);
	return n > 0 ? n : 0;
}

/*
 * Builds and sends the record of one finished syscall. `kaddr` is the
 * kernel's copy of a connect's sockaddr when the caller has it (the fexit
 * variant), else NULL and the path is read from the caller's memory.
 */
static __always_inline int sc_emit(struct sc_pending *pending, long ret, const void *kaddr)
{
	struct sc_pending p = *pending;
	/* unix connects: successes and permission failures (probing); a missing
	 * or refused socket (e.g. nscd absent, on every user lookup) is noise */
	if (p.type == EV_UNIX_CONNECT && ret != 0 && ret != -EACCES_ && ret != -EPERM_)
		return 0;

	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct syscall_event *ev = (struct syscall_event *)s->buf;
	fill_header(&ev->hdr, p.type);
	ev->result = ret;
	ev->syscall_nr = p.nr;
	ev->flags = p.flags;
	ev->_pad = 0;
	ev->str1_len = ev->str2_len = ev->str3_len = 0;
	for (int i = 0; i < 6; i++)
		ev->args[i] = p.args[i];
	__u32 off = sizeof(*ev);

	switch (p.type) {
	case EV_MODULE_LOAD:
		if (p.nr == 313 /* finit_module(fd, uargs, flags) */) {
			struct file *f = fd_file(p.args[0]);
			bool trunc = false;
			if (f) {
				__u32 n = write_path(s, off, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
						     &trunc);
				ev->str1_len = n;
				off += n;
			}
			ev->str2_len = user_str(s, off, p.args[1], RAW_PATH_MAX);
		} else { /* init_module(image, len, uargs) */
			ev->str2_len = user_str(s, off, p.args[2], RAW_PATH_MAX);
		}
		off += ev->str2_len;
		break;
	case EV_BPF: {
		/* the name from the bpf_attr the caller passed */
		__u64 name = p.args[1] + bpf_core_field_offset(union bpf_attr, prog_name);
		long n = bpf_probe_read_user(&s->buf[off & SCRATCH_MASK], 16, (const void *)name);
		if (n == 0) {
			s->buf[(off + 15) & SCRATCH_MASK] = 0;
			ev->str1_len = 16;
			off += 16;
		}
		break;
	}
	case EV_MEMFD_CREATE:
		ev->str1_len = user_str(s, off, p.args[0], NAME_MAX_LEN);
		off += ev->str1_len;
		break;
	case EV_MOUNT:
		ev->str1_len = user_str(s, off, p.args[0], RAW_PATH_MAX);
		off += ev->str1_len;
		ev->str2_len = user_str(s, off, p.args[1], RAW_PATH_MAX);
		off += ev->str2_len;
		ev->str3_len = user_str(s, off, p.args[2], 64);
		off += ev->str3_len;
		break;
	case EV_UNIX_CONNECT: {
		/* sockaddr_un: sa_family, then sun_path; a leading NUL marks an
		 * abstract name (not NUL-terminated: bounded by the buffer) */
		__u64 sun_path = kaddr ? (__u64)kaddr + 2 : p.args[1] + 2;
		char first = 0;
		long rc = kaddr ? bpf_probe_read_kernel(&first, 1, (const void *)sun_path)
				: bpf_probe_read_user(&first, 1, (const void *)sun_path);
		if (rc != 0)
			break;
		if (first == 0) {
			ev->flags |= SC_UNIX_ABSTRACT;
			sun_path += 1;
		}
		if (kaddr) {
			long n = bpf_probe_read_kernel_str(&s->buf[off & SCRATCH_MASK], UNIX_PATH_MAX_,
							   (const void *)sun_path);
			ev->str1_len = n > 0 ? n : 0;
		} else {
			ev->str1_len = user_str(s, off, sun_path, UNIX_PATH_MAX_);
		}
		off += ev->str1_len;
		break;
	}
	default:
		break;
	}
	if (off > SCRATCH_MASK)
		off = SCRATCH_MASK;
	emit(s->buf, off, p.type);
	return 0;
}

static __always_inline int sc_exit(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sc_pending *pp = bpf_task_storage_get(&sc_pending_map, task, 0, 0);
	if (!pp || pp->type == 0)
		return 0;
	struct sc_pending p = *pp;
	pp->type = 0;
	return sc_emit(&p, ret, NULL);
}

#define SC_EXIT(name)                                                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                      \
	{                                                                                          \
		return sc_exit(ctx->ret);                                                          \
	}

/* Stash every call of a syscall under one event type. */
#define SC_ALL(name, type, nargs)                                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                                    \
	{                                                                                          \
		return sc_stash(ctx, type, 0, nargs);                                              \
	}                                                                                          \
	SC_EXIT(name)

/* ptrace: the requests that attach to or write into another process */
SEC("tracepoint/syscalls/sys_enter_ptrace")
int enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = ctx->args[0];
	if (req != PTRACE_TRACEME_ && req != PTRACE_ATTACH_ && req != PTRACE_SEIZE_ && req != PTRACE_POKETEXT_ &&
	    req != PTRACE_POKEDATA_ && req != PTRACE_POKEUSER_ && req != PTRACE_SETREGS_)
		return 0;
	return sc_stash(ctx, EV_PTRACE, 0, 4);
}
SC_EXIT(ptrace)

SC_ALL(init_module, EV_MODULE_LOAD, 3)
SC_ALL(finit_module, EV_MODULE_LOAD, 3)

/* bpf: program loads only (maps and lookups are the busy, benign part) */
SEC("tracepoint/syscalls/sys_enter_bpf")
int enter_bpf(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] != BPF_PROG_LOAD_)
		return 0;
	return sc_stash(ctx, EV_BPF, 0, 3);
}
SC_EXIT(bpf)

SC_ALL(memfd_create, EV_MEMFD_CREATE, 2)

/* socket: raw and packet sockets only */
SEC("tracepoint/syscalls/sys_enter_socket")
int enter_socket(struct trace_event_raw_sys_enter *ctx)
{
	long family = ctx->args[0], type = ctx->args[1] & SOCK_TYPE_MASK_;
	if (family != AF_PACKET_ && type != SOCK_RAW_)
		return 0;
	return sc_stash(ctx, EV_SOCKET, 0, 3);
}
SC_EXIT(socket)

/*
 * dup2/dup3 of a socket onto stdin, stdout or stderr: how a shell is wired to
 * a network peer. Shells dup files and pipes onto 0-2 for every redirection;
 * those are not reported.
 */
static __always_inline int dup_enter(struct trace_event_raw_sys_enter *ctx)
{
	long newfd = ctx->args[1];
	if (newfd < 0 || newfd > 2 || !type_enabled(EV_DUP))
		return 0;
	struct file *f = fd_file(ctx->args[0]);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT_) != S_IFSOCK_)
		return 0;
	return sc_stash(ctx, EV_DUP, SC_OLDFD_IS_SOCKET, 2);
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int enter_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(ctx);
}
SC_EXIT(dup2)

SEC("tracepoint/syscalls/sys_enter_dup3")
int enter_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return dup_enter(ctx);
}
SC_EXIT(dup3)

SC_ALL(setuid, EV_SETUID, 1)
SC_ALL(setgid, EV_SETUID, 1)
SC_ALL(setreuid, EV_SETUID, 2)
SC_ALL(setregid, EV_SETUID, 2)
SC_ALL(setresuid, EV_SETUID, 3)
SC_ALL(setresgid, EV_SETUID, 3)
SC_ALL(setfsuid, EV_SETUID, 1)
SC_ALL(setfsgid, EV_SETUID, 1)
SC_ALL(mount, EV_MOUNT, 5)
SC_ALL(setns, EV_NAMESPACE, 2)
SC_ALL(unshare, EV_NAMESPACE, 1)

/* connect on AF_UNIX sockets: which local service a process talks to (a
 * container runtime's API socket, say). TCP connects come from the net object. */
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (!type_enabled(EV_UNIX_CONNECT))
		return 0;
	__u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), (const void *)ctx->args[1]) != 0 || family != AF_UNIX_)
		return 0;
	return sc_stash(ctx, EV_UNIX_CONNECT, 0, 3);
}
SC_EXIT(connect)

/*
 * ---- AF_UNIX connects through fexit (kernels with BPF trampolines) ----
 *
 * __sys_connect_file(file, address, addrlen, flags) is where every connect
 * lands after the sockaddr was copied in: the connect syscall and io_uring's
 * IORING_OP_CONNECT (which the syscall tracepoints never see). At its return
 * one program has the result and the kernel's own copy of the address, so
 * the path reported is the one the kernel used: the tracepoint variant reads
 * the caller's memory again after the call, which another thread of the
 * caller may have rewritten meanwhile. The result includes an LSM's denial
 * (security_socket_connect runs inside this function), which a hook on the
 * protocol's connect (unix_stream_connect) would miss, and lsm/socket_connect
 * runs before the connect and so cannot say whether it succeeded.
 * Same record as the tracepoint pair: args are the syscall's raw arguments,
 * from the task's saved user registers.
 */
#define NR_connect_ 42

SEC("fexit/__sys_connect_file")
int BPF_PROG(fexit___sys_connect_file, struct file *file, struct __kernel_sockaddr_storage *address, int addrlen,
	     int file_flags, int ret)
{
	if (!type_enabled(EV_UNIX_CONNECT) || is_self())
		return 0;
	if (BPF_CORE_READ(address, ss_family) != AF_UNIX_)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct sc_pending p = { .type = EV_UNIX_CONNECT };
	long nr = BPF_CORE_READ(regs, orig_ax);
	p.nr = (__u32)nr;
	if (nr == NR_connect_) {
		p.args[0] = BPF_CORE_READ(regs, di);
		p.args[1] = BPF_CORE_READ(regs, si);
		p.args[2] = BPF_CORE_READ(regs, dx);
	} else {
		p.args[2] = addrlen;
	}
	return sc_emit(&p, ret, address);
}
