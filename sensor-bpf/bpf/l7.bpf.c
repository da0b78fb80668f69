// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * L7 payload capture: the first L7_PAYLOAD_MAX bytes of reads and writes on
 * TCP sockets, for connections whose traffic is a protocol we parse (HTTP/1.x,
 * Redis RESP, PostgreSQL). A connection is classified by the first request
 * the kernel sees on it (in either direction: a client's send or a server's
 * receive); from then on its payloads in both directions leave the kernel,
 * everything else stays. Its own object, so an L7 storm cannot crowd out the
 * connection events in the net ring.
 */
#include "common.bpf.h"
#include "sock.bpf.h"

/* A read or write in flight on a thread. */
struct l7_pending {
	__u64 sk;
	__u64 buf;     /* the user buffer, or the iovec array */
	__u32 dir;     /* L7_DIR_* */
	__u32 is_iov;  /* buf is a struct iovec array (readv/writev, sendmsg/recvmsg) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l7_pending);
} l7_pending_map SEC(".maps");

/* A connection: the socket and its addresses. A freed socket's memory is
 * reused for later sockets, so the pointer alone would carry a closed
 * connection's protocol over to a new one. */
struct l7_conn_key {
	__u64 sk;
	__u16 sport;
	__u16 dport;
	__u32 daddr; /* IPv4, or the last 4 bytes of IPv6 */
};

/* Connections classified so far -> L7_PROTO_*. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7_conn_key);
	__type(value, __u8);
} l7_conns SEC(".maps");

static __always_inline int l7_enter(long fd, __u64 buf, __u32 dir, __u32 is_iov)
{
	if (!type_enabled(EV_L7) || is_self() || !buf)
		return 0;
	struct sock *sk = fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct l7_pending *p = bpf_task_storage_get(&l7_pending_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return 0;
	p->sk = (__u64)sk;
	p->buf = buf;
	p->dir = dir;
	p->is_iov = is_iov;
	return 0;
}

static __always_inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A request that opens a protocol we parse, from its first bytes. */
static __always_inline __u8 classify(const char *b, long n)
{
	if (n < 4)
		return 0;
	/* HTTP/1.x request line: a method and a space */
	if ((b[0] == 'G' && b[1] == 'E' && b[2] == 'T' && b[3] == ' ') ||
	    (b[0] == 'P' && b[1] == 'O' && b[2] == 'S' && b[3] == 'T') ||
	    (b[0] == 'P' && b[1] == 'U' && b[2] == 'T' && b[3] == ' ') ||
	    (b[0] == 'H' && b[1] == 'E' && b[2] == 'A' && b[3] == 'D') ||
	    (b[0] == 'D' && b[1] == 'E' && b[2] == 'L' && b[3] == 'E') ||
	    (b[0] == 'P' && b[1] == 'A' && b[2] == 'T' && b[3] == 'C') ||
	    (b[0] == 'O' && b[1] == 'P' && b[2] == 'T' && b[3] == 'I'))
		return L7_PROTO_HTTP;
	/* RESP: an array of bulk strings, "*<count>\r\n$" */
	if (b[0] == '*' && is_digit(b[1]) && n >= 5) {
		if (b[2] == '\r' && b[3] == '\n' && b[4] == '$')
			return L7_PROTO_REDIS;
		if (n >= 6 && is_digit(b[2]) && b[3] == '\r' && b[4] == '\n' && b[5] == '$')
			return L7_PROTO_REDIS;
	}
	/* PostgreSQL: a startup message (length, protocol 3.0) or a simple query */
	if (n >= 8 && b[4] == 0 && b[5] == 3 && b[6] == 0 && b[7] == 0 && b[0] == 0 && b[1] == 0)
		return L7_PROTO_PG;
	if (b[0] == 'Q' && b[1] == 0 && b[2] == 0 && n >= 6)
		return L7_PROTO_PG;
	return 0;
}

static __always_inline int l7_exit(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct l7_pending *pp = bpf_task_storage_get(&l7_pending_map, task, 0, 0);
	if (!pp || pp->sk == 0)
		return 0;
	struct l7_pending p = *pp;
	pp->sk = 0;
	if (ret <= 0)
		return 0;

	__u64 src = p.buf;
	__u64 avail = ret;
	if (p.is_iov) {
		/* the first iovec only: requests and status lines start there */
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)p.buf) != 0)
			return 0;
		src = (__u64)iov.iov_base;
		if (iov.iov_len < avail)
			avail = iov.iov_len;
	}
	__u32 n = avail < L7_PAYLOAD_MAX ? avail : L7_PAYLOAD_MAX;

	struct l7_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + L7_PAYLOAD_MAX, 0);
	if (!ev) {
		count_lost(EV_L7);
		return 0;
	}
	n &= (2 * L7_PAYLOAD_MAX - 1);
	if (n > L7_PAYLOAD_MAX)
		n = L7_PAYLOAD_MAX;
	if (n == 0 || bpf_probe_read_user(ev->data, n, (const void *)src) != 0) {
		bpf_ringbuf_discard(ev, 0);
		return 0;
	}
	struct net_event addrs;
	read_addrs((const struct sock *)p.sk, &addrs);
	struct l7_conn_key key = { .sk = p.sk, .sport = addrs.sport, .dport = addrs.dport };
	__builtin_memcpy(&key.daddr, addrs.family == AF_INET6_ ? &addrs.daddr[12] : addrs.daddr, 4);
	__u8 *known = bpf_map_lookup_elem(&l7_conns, &key);
	__u8 proto = known ? *known : 0;
	if (!proto) {
		proto = classify(ev->data, n);
		if (!proto) {
			bpf_ringbuf_discard(ev, 0);
			return 0;
		}
		bpf_map_update_elem(&l7_conns, &key, &proto, BPF_ANY);
	}
	fill_header(&ev->hdr, EV_L7);
	__builtin_memcpy(ev->saddr, addrs.saddr, 16);
	__builtin_memcpy(ev->daddr, addrs.daddr, 16);
	ev->sport = addrs.sport;
	ev->dport = addrs.dport;
	ev->family = addrs.family;
	ev->sock_id = p.sk;
	ev->direction = p.dir;
	ev->protocol = proto;
	ev->total_len = ret > 0xffffffff ? 0xffffffff : ret;
	ev->payload_len = n;
	bpf_ringbuf_submit(ev, rb_flags());
	return 0;
}

#define L7_PAIR(name, dir, bufarg, is_iov)                                                         \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                                    \
	{                                                                                          \
		return l7_enter(ctx->args[0], ctx->args[bufarg], dir, is_iov);                     \
	}                                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                      \
	{                                                                                          \
		return l7_exit(ctx->ret);                                                          \
	}

L7_PAIR(write, L7_DIR_SEND, 1, 0)
L7_PAIR(read, L7_DIR_RECV, 1, 0)
L7_PAIR(writev, L7_DIR_SEND, 1, 1)
L7_PAIR(readv, L7_DIR_RECV, 1, 1)
L7_PAIR(sendto, L7_DIR_SEND, 1, 0)
L7_PAIR(recvfrom, L7_DIR_RECV, 1, 0)

/* sendmsg/recvmsg: the iovec array is msg->msg_iov */
static __always_inline int l7_enter_msg(long fd, __u64 umsg, __u32 dir)
{
	if (!umsg)
		return 0;
	struct user_msghdr msg = {};
	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)umsg) != 0)
		return 0;
	return l7_enter(fd, (__u64)msg.msg_iov, dir, 1);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return l7_enter_msg(ctx->args[0], ctx->args[1], L7_DIR_SEND);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return l7_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return l7_enter_msg(ctx->args[0], ctx->args[1], L7_DIR_RECV);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	return l7_exit(ctx->ret);
}
