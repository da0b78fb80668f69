// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * File operations: open family, unlink, rename, chmod, link, symlink.
 *
 * sys_enter stashes the arguments per thread; sys_exit builds the record with
 * the result, because only then does an open have an fd whose dentry gives
 * the canonical path. Paths that did not open (failed opens, unlink, rename,
 * ...) travel as the caller's string plus the absolute path of the directory
 * it is relative to; user space joins them (see events.h).
 */
#include "common.bpf.h"

#define AT_FDCWD_ -100
#define O_WRONLY_ 01
#define O_RDWR_ 02
#define O_CREAT_ 0100
#define O_TRUNC_ 01000
#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000

/* 0: report everything not ignored; 1: report only paths under a watch prefix */
const volatile __u32 watch_only = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct path_filter_key);
	__type(value, __u32);
} path_filter SEC(".maps");

enum path_base {
	BASE_DFD = 0, /* relative to dfd (AT_FDCWD: the cwd) */
	BASE_NONE = 1, /* stored as is (a symlink's target text) */
};

struct pending {
	__u32 type;
	__u32 nr;
	const char *p1;
	const char *p2;
	__s64 dfd1;
	__s64 dfd2;
	__s64 fd; /* fchmod: the file; -1 otherwise */
	__u32 flags;
	__u32 mode;
	__u32 base1;
};

/* The syscall in flight on each thread. Task-local storage rather than a
 * hash keyed by tid: no hashing or locking on the hot path, and the slot
 * goes away with the task. `type` 0 means nothing is pending. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} pending_map SEC(".maps");

static __always_inline int stash(struct pending *p)
{
	if (!type_enabled(p->type) || is_self())
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pending *slot = bpf_task_storage_get(&pending_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = *p;
	return 0;
}

static __always_inline __u16 u16_len(__u32 v)
{
	return v > 0xffff ? 0xffff : v;
}

/* Writes `path` (from user memory) and, when relative, its base directory.
 * Returns bytes written; fills the two lengths. */
static __always_inline __u32 write_user_path(struct scratch *s, __u32 off, const char *path, __s64 dfd,
					     __u32 base_kind, __u16 *path_len, __u16 *base_len,
					     struct file_event *ev, __u16 trunc_path_bit, __u16 trunc_base_bit)
{
	__u32 start = off;
	long n = bpf_probe_read_user_str(&s->buf[off & SCRATCH_MASK], RAW_PATH_MAX, path);
	if (n <= 0) {
		s->buf[off & SCRATCH_MASK] = 0;
		n = 1;
	} else if (n == RAW_PATH_MAX) {
		ev->info |= trunc_path_bit;
	}
	bool relative = s->buf[off & SCRATCH_MASK] != '/';
	*path_len = n;
	off += n;
	*base_len = 0;
	if (!relative || base_kind == BASE_NONE)
		return off - start;

	bool trunc = false;
	__u32 b = 0;
	if (dfd == AT_FDCWD_) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		b = write_path(s, off, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt),
			       &trunc);
		ev->info |= FILE_BASE_IS_CWD;
	} else {
		struct file *f = fd_file(dfd);
		if (f)
			b = write_path(s, off, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
				       &trunc);
		else
			ev->info |= FILE_DIRFD_UNRESOLVED;
	}
	if (trunc)
		ev->info |= trunc_base_bit;
	*base_len = u16_len(b);
	off += b;
	return off - start;
}

/* Applies the path filter to a read-only open (or, in watch-only mode, to any
 * operation) whose first path is absolute. Returns true to drop the record. */
static __always_inline bool filtered(struct scratch *s, struct file_event *ev, bool read_only)
{
	const char *path = &s->buf[sizeof(struct file_event)];
	/* a relative or truncated path has no known prefix: report it */
	if (path[0] != '/' || (ev->info & FILE_PATH_TRUNCATED))
		return false;
	struct path_filter_key key = {};
	__u32 len = ev->path_len > 0 ? ev->path_len - 1 : 0;
	if (len > PATH_FILTER_KEY_MAX)
		len = PATH_FILTER_KEY_MAX;
	__builtin_memcpy(key.data, path, PATH_FILTER_KEY_MAX);
	key.prefixlen = len * 8;
	__u32 *action = bpf_map_lookup_elem(&path_filter, &key);
	if (action && *action == PATH_FILTER_WATCH)
		return false;
	if (watch_only)
		return true;
	return action && *action == PATH_FILTER_IGNORE && read_only;
}

/* Builds and sends the record of one finished operation (both mechanisms). */
static __always_inline int file_emit(struct pending *pending, long ret)
{
	struct pending p = *pending;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct file_event *ev = (struct file_event *)s->buf;
	fill_header(&ev->hdr, p.type);
	ev->result = ret;
	ev->flags = p.flags;
	ev->mode = p.mode;
	ev->syscall_nr = p.nr;
	ev->info = 0;
	ev->path_len = ev->base_len = ev->path2_len = ev->base2_len = 0;
	ev->_pad = 0;

	__u32 off = sizeof(*ev);
	struct file *resolved = NULL;
	if (p.type == EV_OPEN && ret >= 0)
		resolved = fd_file(ret);
	else if (p.fd >= 0)
		resolved = fd_file(p.fd);

	if (resolved) {
		bool trunc = false;
		__u32 n = write_path(s, off, BPF_CORE_READ(resolved, f_path.dentry),
				     BPF_CORE_READ(resolved, f_path.mnt), &trunc);
		ev->info |= FILE_PATH_RESOLVED | (trunc ? FILE_PATH_TRUNCATED : 0);
		ev->path_len = u16_len(n);
		off += n;
		/* keep the caller's string too: `/etc/../etc/shadow` is itself a signal */
		/* a cwd-relative name also brings the cwd: it keeps the process
		 * table's cwd current after the process changes directory */
		if (p.p1) {
			__u32 base_kind = p.dfd1 == AT_FDCWD_ ? BASE_DFD : BASE_NONE;
			off += write_user_path(s, off, p.p1, p.dfd1, base_kind, &ev->path2_len, &ev->base2_len, ev,
					       FILE_PATH2_TRUNCATED, FILE_BASE2_TRUNCATED);
		}
	} else {
		off += write_user_path(s, off, p.p1, p.dfd1, p.base1, &ev->path_len, &ev->base_len, ev,
				       FILE_PATH_TRUNCATED, FILE_BASE_TRUNCATED);
		if (p.p2)
			off += write_user_path(s, off, p.p2, p.dfd2, BASE_DFD, &ev->path2_len, &ev->base2_len,
					       ev, FILE_PATH2_TRUNCATED, FILE_BASE2_TRUNCATED);
	}

	bool read_only = p.type == EV_OPEN && (p.flags & (O_WRONLY_ | O_RDWR_ | O_CREAT_ | O_TRUNC_)) == 0;
	if (filtered(s, ev, read_only))
		return 0;
	if (off > SCRATCH_MASK)
		off = SCRATCH_MASK;
	emit(s->buf, off, p.type);
	return 0;
}

static __always_inline int file_exit(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pending *pp = bpf_task_storage_get(&pending_map, task, 0, 0);
	if (!pp || pp->type == 0)
		return 0;
	struct pending p = *pp;
	pp->type = 0;
	return file_emit(&p, ret);
}

#define ARG(i) (ctx->args[i])

/* One stash per syscall flavour; every exit shares file_exit. */
#define FILE_EXIT(name)                                                                            \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                      \
	{                                                                                          \
		return file_exit(ctx->ret);                                                        \
	}

#define PENDING(t) struct pending p = { .type = (t), .nr = (__u32)ctx->id, .fd = -1, .dfd1 = AT_FDCWD_, .dfd2 = AT_FDCWD_ }

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_OPEN);
	p.p1 = (const char *)ARG(0);
	p.flags = ARG(1);
	p.mode = ARG(2);
	return stash(&p);
}
FILE_EXIT(open)

SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_OPEN);
	p.p1 = (const char *)ARG(0);
	p.flags = O_CREAT_ | O_WRONLY_ | O_TRUNC_;
	p.mode = ARG(1);
	return stash(&p);
}
FILE_EXIT(creat)

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_OPEN);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.flags = ARG(2);
	p.mode = ARG(3);
	return stash(&p);
}
FILE_EXIT(openat)

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_OPEN);
	struct open_how how = {};
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	bpf_probe_read_user(&how, sizeof(how), (void *)ARG(2));
	p.flags = how.flags;
	p.mode = how.mode;
	return stash(&p);
}
FILE_EXIT(openat2)

SEC("tracepoint/syscalls/sys_enter_unlink")
int enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_UNLINK);
	p.p1 = (const char *)ARG(0);
	return stash(&p);
}
FILE_EXIT(unlink)

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_UNLINK);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.flags = ARG(2);
	return stash(&p);
}
FILE_EXIT(unlinkat)

SEC("tracepoint/syscalls/sys_enter_rename")
int enter_rename(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_RENAME);
	p.p1 = (const char *)ARG(0);
	p.p2 = (const char *)ARG(1);
	return stash(&p);
}
FILE_EXIT(rename)

SEC("tracepoint/syscalls/sys_enter_renameat")
int enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_RENAME);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.dfd2 = (int)ARG(2);
	p.p2 = (const char *)ARG(3);
	return stash(&p);
}
FILE_EXIT(renameat)

SEC("tracepoint/syscalls/sys_enter_renameat2")
int enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_RENAME);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.dfd2 = (int)ARG(2);
	p.p2 = (const char *)ARG(3);
	p.flags = ARG(4);
	return stash(&p);
}
FILE_EXIT(renameat2)

SEC("tracepoint/syscalls/sys_enter_chmod")
int enter_chmod(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_CHMOD);
	p.p1 = (const char *)ARG(0);
	p.mode = ARG(1);
	return stash(&p);
}
FILE_EXIT(chmod)

SEC("tracepoint/syscalls/sys_enter_fchmod")
int enter_fchmod(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_CHMOD);
	p.fd = (int)ARG(0);
	p.mode = ARG(1);
	return stash(&p);
}
FILE_EXIT(fchmod)

SEC("tracepoint/syscalls/sys_enter_fchmodat")
int enter_fchmodat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_CHMOD);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.mode = ARG(2);
	return stash(&p);
}
FILE_EXIT(fchmodat)

SEC("tracepoint/syscalls/sys_enter_fchmodat2")
int enter_fchmodat2(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_CHMOD);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.mode = ARG(2);
	p.flags = ARG(3);
	return stash(&p);
}
FILE_EXIT(fchmodat2)

SEC("tracepoint/syscalls/sys_enter_link")
int enter_link(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_LINK);
	p.p1 = (const char *)ARG(0);
	p.p2 = (const char *)ARG(1);
	return stash(&p);
}
FILE_EXIT(link)

SEC("tracepoint/syscalls/sys_enter_linkat")
int enter_linkat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_LINK);
	p.dfd1 = (int)ARG(0);
	p.p1 = (const char *)ARG(1);
	p.dfd2 = (int)ARG(2);
	p.p2 = (const char *)ARG(3);
	p.flags = ARG(4);
	return stash(&p);
}
FILE_EXIT(linkat)

SEC("tracepoint/syscalls/sys_enter_symlink")
int enter_symlink(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_SYMLINK);
	p.p1 = (const char *)ARG(0);
	p.base1 = BASE_NONE;
	p.p2 = (const char *)ARG(1);
	return stash(&p);
}
FILE_EXIT(symlink)

SEC("tracepoint/syscalls/sys_enter_symlinkat")
int enter_symlinkat(struct trace_event_raw_sys_enter *ctx)
{
	PENDING(EV_SYMLINK);
	p.p1 = (const char *)ARG(0);
	p.base1 = BASE_NONE;
	p.dfd2 = (int)ARG(1);
	p.p2 = (const char *)ARG(2);
	return stash(&p);
}
FILE_EXIT(symlinkat)

/*
 * ---- the open family through fexit (kernels with BPF trampolines) ----
 *
 * open, creat, openat and openat2 all end in do_sys_openat2(dfd, filename,
 * how). One fexit program there sees the arguments and the result together:
 * no enter/exit pair with a per-thread pending slot between them, and one
 * BPF invocation per open instead of two tracepoint hits. It still sees
 * failed opens and the fd, which lsm/file_open cannot: that hook runs inside
 * the open, before there is an fd or a result, and never for an open that
 * fails in the path lookup. The record is the one file_exit sends, field for
 * field: the syscall number and the flags/mode as the caller passed them come
 * from the task's saved user registers (do_sys_open adds O_LARGEFILE and
 * clears a mode without O_CREAT; the tracepoints report the raw arguments).
 *
 * Runs in the opening task's context after the open, like the syscall exit
 * tracepoint, and uses the per-CPU scratch the same way (see common.bpf.h):
 * trampolines disable migration, not preemption, which is also how syscall
 * tracepoints run on recent kernels; on a non-preemptible or voluntary-
 * preemption kernel (Debian's default) nothing can interleave on this CPU.
 * The loader tries this program first and falls back to the tracepoints
 * above when the kernel refuses it (no trampolines, no BTF for the function).
 */
#define NR_open_ 2
#define NR_creat_ 85
#define NR_openat_ 257
#define NR_openat2_ 437
#define O_LARGEFILE_ 0100000

SEC("fexit/do_sys_openat2")
int BPF_PROG(fexit_do_sys_openat2, int dfd, const char *filename, struct open_how *how, int ret)
{
	/* `ret` is long on 6.1 and int on newer kernels: an fd or -errno fits both */
	if (!type_enabled(EV_OPEN) || is_self())
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = BPF_CORE_READ(regs, orig_ax);
	struct pending p = { .type = EV_OPEN, .nr = (__u32)nr, .fd = -1, .dfd1 = dfd, .dfd2 = AT_FDCWD_ };
	p.p1 = filename;
	switch (nr) {
	case NR_open_:
		p.flags = BPF_CORE_READ(regs, si);
		p.mode = BPF_CORE_READ(regs, dx);
		break;
	case NR_creat_:
		p.flags = O_CREAT_ | O_WRONLY_ | O_TRUNC_;
		p.mode = BPF_CORE_READ(regs, si);
		break;
	case NR_openat_:
		p.flags = BPF_CORE_READ(regs, dx);
		p.mode = BPF_CORE_READ(regs, r10);
		break;
	default:
		/* openat2 (the kernel's copy of the caller's open_how), or a caller
		 * that is no syscall: the kernel's view without its own addition */
		p.flags = BPF_CORE_READ(how, flags);
		p.mode = BPF_CORE_READ(how, mode);
		if (nr != NR_openat2_)
			p.flags &= ~O_LARGEFILE_;
		break;
	}
	return file_emit(&p, ret);
}
