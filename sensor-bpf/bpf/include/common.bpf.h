/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Shared by every hook family: the per-object ring buffer and lost counters,
 * load-time configuration, the event header, and path assembly from dentries.
 *
 * Each *.bpf.c is its own object with its own ring buffer, so a storm in one
 * family (file opens) cannot make another (exec) lose events.
 */
#ifndef SENSOR_COMMON_BPF_H
#define SENSOR_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time configuration (rewritten in .rodata by the loader). */
const volatile __u32 self_tgid = 0;          /* the sensor itself: never reported */
const volatile __u64 enabled_types = ~0ULL;  /* bit N set: event type N is on */
const volatile __u64 wakeup_bytes = 1 << 20; /* wake the reader once this much waits */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Records that did not fit in the ring buffer, per event type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_TYPE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline bool type_enabled(__u32 type)
{
	return (enabled_types >> (type & 63)) & 1;
}

static __always_inline void count_lost(__u32 type)
{
	__u32 key = type & (EV_TYPE_MAX - 1);
	__u64 *n = bpf_map_lookup_elem(&lost, &key);
	if (n)
		*n += 1;
}

/*
 * Wake the reader only when a batch is waiting: a wakeup per event doubles
 * the cost of a busy syscall (see DESIGN.md). The reader also polls every few
 * milliseconds, so a quiet trickle is still delivered promptly.
 */
static __always_inline __u64 rb_flags(void)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(void *data, __u64 size, __u32 type)
{
	if (bpf_ringbuf_output(&events, data, size, rb_flags()) != 0)
		count_lost(type);
}

static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

static __always_inline void fill_header(struct event_header *h, __u32 type)
{
	/* BTF pointer loads instead of probe-read helper calls: a few ns each */
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->start_time = task->group_leader->start_time;
	h->type = type;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = task->real_parent->tgid;
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/*
 * Scratch space for building variable-length records: too big for the 512-byte
 * stack. Only programs that run in process context (syscall and sched
 * tracepoints) use it; those cannot nest on one CPU.
 */
#define SCRATCH_SIZE (1 << 16)
#define SCRATCH_MASK (SCRATCH_SIZE / 2 - 1) /* offsets stay in the first half */
struct path_state {
	const struct dentry *dentry;
	const struct vfsmount *vfsmnt;
	const struct mount *mnt;
	const struct dentry *root_dentry;
	const struct vfsmount *root_mnt;
	__u32 depth;
	__u32 complete;
	__u32 truncated;
	__u32 off;
	__u32 start;
};

struct scratch {
	char buf[SCRATCH_SIZE];
	const struct dentry *dentries[PATH_DEPTH_MAX];
	struct path_state ps;
};

/*
 * A plain array indexed by CPU rather than a per-CPU array: per-CPU values are
 * capped at 32 KiB. The loader sets max_entries to the number of possible CPUs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch_map, &cpu);
}

/*
 * Path assembly runs in bpf_loop callbacks. The loop state lives in the
 * scratch map value, not on the stack: the verifier tracks stack values
 * precisely, so every iteration would look new and the callback would be
 * re-verified until the 1M-instruction budget runs out; values read from a
 * map are unknown scalars, so one pass converges. Indices are masked.
 */
/* One step up the tree: record a component, or cross a mount point. */
static long walk_step(__u32 i, void *data)
{
	struct scratch *s = *(struct scratch **)data;
	struct path_state *c = &s->ps;
	const struct dentry *dentry = c->dentry;
	if (dentry == c->root_dentry && c->vfsmnt == c->root_mnt) {
		c->complete = 1;
		return 1;
	}
	/* locals: CO-RE relocations must start from a kernel type */
	const struct vfsmount *vfsmnt = c->vfsmnt;
	const struct mount *mnt = c->mnt;
	const struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	const struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	__u32 depth = c->depth;
	if (dentry == mnt_root || dentry == parent) {
		const struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (dentry != mnt_root) {
			/* a disconnected dentry (a memfd, an anonymous file): its own
			 * name ("memfd:NAME") is the whole path, as the kernel shows it */
			if (depth < PATH_DEPTH_MAX) {
				s->dentries[depth & (PATH_DEPTH_MAX - 1)] = dentry;
				c->depth = depth + 1;
			}
			c->complete = 1;
			return 1;
		}
		if (mnt_parent == mnt) {
			/* the global root */
			c->complete = 1;
			return 1;
		}
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = mnt_parent;
		c->vfsmnt = (const void *)mnt_parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	if (depth >= PATH_DEPTH_MAX)
		return 1;
	s->dentries[depth & (PATH_DEPTH_MAX - 1)] = dentry;
	c->depth = depth + 1;
	c->dentry = parent;
	return 0;
}

/* Writes "/name" for the i-th component from the root. */
static long emit_step(__u32 i, void *data)
{
	struct scratch *s = *(struct scratch **)data;
	struct path_state *c = &s->ps;
	__u32 off = c->off;
	if (off - c->start >= PATH_MAX_LEN - NAME_MAX_LEN) {
		c->truncated = 1;
		return 1;
	}
	const struct dentry *d = s->dentries[(c->depth - 1 - i) & (PATH_DEPTH_MAX - 1)];
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	s->buf[off & SCRATCH_MASK] = '/';
	off++;
	long n = bpf_probe_read_kernel_str(&s->buf[off & SCRATCH_MASK], NAME_MAX_LEN, name);
	if (n <= 0)
		n = 1;
	c->off = off + n - 1; /* the next '/' overwrites the NUL */
	return 0;
}

/*
 * Writes the absolute path of (dentry, vfsmnt) at buf[off], root first and
 * NUL-terminated, as d_path would: mount points are crossed upwards, and the
 * walk stops at the task's root so a chrooted or containerised process sees
 * the paths it sees itself. Returns bytes written including the NUL; sets
 * *truncated when the path was deeper or longer than the bounds.
 */
static __always_inline __u32 write_path(struct scratch *s, __u32 off, const struct dentry *dentry,
					const struct vfsmount *vfsmnt, bool *truncated)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct path_state *c = &s->ps;
	c->dentry = dentry;
	c->vfsmnt = vfsmnt;
	c->mnt = (const void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	c->root_dentry = task->fs->root.dentry;
	c->root_mnt = task->fs->root.mnt;
	c->depth = 0;
	c->complete = 0;
	c->truncated = 0;
	c->off = off;
	c->start = off;
	struct scratch *ctx = s;
	bpf_loop(PATH_DEPTH_MAX + 8, walk_step, &ctx, 0);
	if (!c->complete)
		*truncated = true;
	__u32 depth = c->depth;
	if (depth == 0) {
		s->buf[off & SCRATCH_MASK] = '/';
		s->buf[(off + 1) & SCRATCH_MASK] = 0;
		return 2;
	}
	bpf_loop(depth & (PATH_DEPTH_MAX * 2 - 1), emit_step, &ctx, 0);
	if (c->truncated)
		*truncated = true;
	__u32 end = c->off;
	s->buf[end & SCRATCH_MASK] = 0;
	__u32 n = end - off + 1;
	/* bounded for the callers' offset arithmetic */
	return n > PATH_MAX_LEN ? PATH_MAX_LEN : n;
}

/* The file open as fd in the current task, or NULL. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	unsigned int max = fdt->max_fds;
	if (fd < 0 || fd >= max)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif /* SENSOR_COMMON_BPF_H */
