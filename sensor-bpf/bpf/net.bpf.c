// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Network: the TCP connection life cycle from sock/inet_sock_set_state
 * (connect latency, listen, close with duration and bytes), accept from the
 * accept syscalls (the only place the accepting process is current), and
 * DNS datagrams from the send/recv syscalls on UDP sockets with port 53.
 */
#include "common.bpf.h"
#include "sock.bpf.h"

#define DNS_PORT 53

/* A tracked TCP connection: who owns it, since when, and its addresses
 * (kept because the local port is already released when the close fires). */
struct conn {
	struct event_header owner; /* the process that connected or accepted */
	__u64 start_ns;            /* connect: SYN sent; then established / accepted */
	__u32 direction;
	__u32 has_addrs;
	struct net_event addrs;    /* saddr..family filled once established */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

/* A conn under construction: too big for the stack. Only built in process
 * context (connect, accept), which cannot nest on one CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn);
} conn_scratch SEC(".maps");

static __always_inline struct conn *get_conn_scratch(void)
{
	__u32 slot = 0;
	return bpf_map_lookup_elem(&conn_scratch, &slot);
}

static __always_inline void copy_addrs(struct net_event *dst, const struct net_event *src)
{
	__builtin_memcpy(dst->saddr, src->saddr, 16);
	__builtin_memcpy(dst->daddr, src->daddr, 16);
	dst->sport = src->sport;
	dst->dport = src->dport;
	dst->family = src->family;
}

static __always_inline struct net_event *reserve_net(__u32 type)
{
	if (!type_enabled(type))
		return NULL;
	struct net_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_lost(type);
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	return ev;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	__u64 key = (__u64)sk;
	__u64 now = bpf_ktime_get_boot_ns();

	/* connect() and listen() run these transitions in the caller's context */
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		if (is_self())
			return 0;
		struct conn *c = get_conn_scratch();
		if (!c)
			return 0;
		__builtin_memset(c, 0, sizeof(*c));
		c->start_ns = now;
		c->direction = NET_DIR_OUTBOUND;
		fill_header(&c->owner, EV_CONNECT);
		bpf_map_update_elem(&conns, &key, c, BPF_ANY);
		return 0;
	}
	if (oldstate == TCP_CLOSE && newstate == TCP_LISTEN) {
		if (is_self())
			return 0;
		struct net_event *ev = reserve_net(EV_LISTEN);
		if (!ev)
			return 0;
		fill_header(&ev->hdr, EV_LISTEN);
		read_addrs(sk, ev);
		ev->protocol = IPPROTO_TCP_;
		ev->sock_id = key;
		bpf_ringbuf_submit(ev, rb_flags());
		return 0;
	}

	/* the rest may run in softirq: the owner comes from the map */
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;

	if (oldstate == TCP_SYN_SENT && (newstate == TCP_ESTABLISHED || newstate == TCP_CLOSE)) {
		struct net_event *ev = reserve_net(EV_CONNECT);
		if (ev) {
			ev->hdr = c->owner;
			ev->hdr.type = EV_CONNECT;
			ev->hdr.ts_ns = now;
			read_addrs(sk, ev);
			ev->protocol = IPPROTO_TCP_;
			ev->direction = NET_DIR_OUTBOUND;
			ev->sock_id = key;
			ev->latency_ns = now - c->start_ns;
			if (newstate == TCP_CLOSE) {
				int err = BPF_CORE_READ(sk, sk_err);
				ev->error = err ? -err : -111 /* ECONNREFUSED */;
			}
			bpf_ringbuf_submit(ev, rb_flags());
		}
		if (newstate == TCP_CLOSE) {
			bpf_map_delete_elem(&conns, &key);
		} else {
			c->start_ns = now;
			read_addrs(sk, &c->addrs);
			c->has_addrs = 1;
		}
		return 0;
	}

	if (newstate == TCP_CLOSE) {
		struct net_event *ev = reserve_net(EV_CLOSE);
		if (ev) {
			const struct tcp_sock *tp = (const struct tcp_sock *)sk;
			ev->hdr = c->owner;
			ev->hdr.type = EV_CLOSE;
			ev->hdr.ts_ns = now;
			if (c->has_addrs)
				copy_addrs(ev, &c->addrs);
			else
				read_addrs(sk, ev);
			ev->protocol = IPPROTO_TCP_;
			ev->direction = c->direction;
			ev->sock_id = key;
			ev->duration_ns = now - c->start_ns;
			/* payload bytes: sequence space also counts SYN and FIN, and
			 * bytes_sent counts retransmissions twice */
			ev->bytes_sent = BPF_CORE_READ(tp, bytes_sent) - BPF_CORE_READ(tp, bytes_retrans);
			__u64 received = BPF_CORE_READ(tp, bytes_received);
			if (((BPF_CORE_READ(sk, __sk_common.skc_flags) >> SOCK_DONE) & 1) && received > 0)
				received--; /* the peer's FIN */
			ev->bytes_received = received;
			ev->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
			ev->retransmits = BPF_CORE_READ(tp, total_retrans);
			bpf_ringbuf_submit(ev, rb_flags());
		}
		bpf_map_delete_elem(&conns, &key);
	}
	return 0;
}

static __always_inline int accept_exit(long ret)
{
	if (ret < 0 || is_self())
		return 0;
	struct sock *sk = fd_sock(ret);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	__u64 key = (__u64)sk;
	/* the scratch first: older verifiers (6.1) lose track of a reserved
	 * record across a second null check and reject the program */
	struct conn *c = get_conn_scratch();
	if (!c)
		return 0;
	c->start_ns = bpf_ktime_get_boot_ns();
	c->direction = NET_DIR_INBOUND;
	fill_header(&c->owner, EV_ACCEPT);
	read_addrs(sk, &c->addrs);
	c->has_addrs = 1;
	bpf_map_update_elem(&conns, &key, c, BPF_ANY);
	struct net_event *ev = reserve_net(EV_ACCEPT);
	if (!ev)
		return 0;
	ev->hdr = c->owner;
	copy_addrs(ev, &c->addrs);
	ev->protocol = IPPROTO_TCP_;
	ev->direction = NET_DIR_INBOUND;
	ev->sock_id = key;
	bpf_ringbuf_submit(ev, rb_flags());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

/* ---- DNS ---- */

struct dns_pending {
	__u64 sk;
	const void *buf;         /* payload (sendto/recvfrom) */
	const void *addr;        /* sockaddr the caller passed (may be NULL) */
	const struct user_msghdr *msg; /* sendmsg/recvmsg/sendmmsg */
	__u32 direction;
	__u32 len;               /* send: the length asked to send */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct dns_pending);
} dns_pending_map SEC(".maps");

static __always_inline int dns_enter(long fd, const void *buf, const void *addr, const struct user_msghdr *msg,
				     __u32 direction, __u32 len)
{
	if (!type_enabled(EV_DNS) || is_self())
		return 0;
	struct sock *sk = fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP_)
		return 0;
	struct dns_pending p = {
		.sk = (__u64)sk, .buf = buf, .addr = addr, .msg = msg, .direction = direction, .len = len
	};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&dns_pending_map, &tid, &p, BPF_ANY);
	return 0;
}

/* Port (host order) and address from a user sockaddr; 0 if none. */
static __always_inline __u16 read_sockaddr(const void *uaddr, unsigned char *addr16)
{
	if (!uaddr)
		return 0;
	struct sockaddr_in6 sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), uaddr) != 0)
		return 0;
	if (sa.sin6_family == AF_INET6_) {
		__builtin_memcpy(addr16, &sa.sin6_addr, 16);
		return bpf_ntohs(sa.sin6_port);
	}
	if (sa.sin6_family == AF_INET_) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;
		__builtin_memcpy(addr16, &in->sin_addr, 4);
		return bpf_ntohs(in->sin_port);
	}
	return 0;
}

static __always_inline int dns_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_pending *pp = bpf_map_lookup_elem(&dns_pending_map, &tid);
	if (!pp)
		return 0;
	struct dns_pending p = *pp;
	bpf_map_delete_elem(&dns_pending_map, &tid);
	if (ret <= 0)
		return 0;

	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct dns_event *ev = (struct dns_event *)s->buf;
	__builtin_memset(ev, 0, sizeof(*ev));
	const struct sock *sk = (const struct sock *)p.sk;
	ev->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (ev->family == AF_INET6_) {
		BPF_CORE_READ_INTO(&ev->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ev->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)ev->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)ev->daddr, sk, __sk_common.skc_daddr);
	}

	const void *payload = p.buf;
	const void *uaddr = p.addr;
	if (p.msg) {
		struct user_msghdr m = {};
		bpf_probe_read_user(&m, sizeof(m), p.msg);
		uaddr = m.msg_name;
		struct iovec iov = {};
		if (m.msg_iov)
			bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov);
		payload = iov.iov_base;
	}
	/* an unconnected socket names its peer per datagram */
	unsigned char peer[16] = {};
	__u16 peer_port = read_sockaddr(uaddr, peer);
	if (peer_port) {
		ev->dport = peer_port;
		__builtin_memcpy(ev->daddr, peer, 16);
	}
	if (ev->sport != DNS_PORT && ev->dport != DNS_PORT)
		return 0;
	if (!type_enabled(EV_DNS))
		return 0;

	fill_header(&ev->hdr, EV_DNS);
	ev->direction = p.direction;
	/* sendmmsg returns a message count, not bytes */
	__u32 total = p.len ? p.len : (__u32)ret;
	ev->total_len = total;
	__u32 n = total > DNS_PAYLOAD_MAX ? DNS_PAYLOAD_MAX : total;
	n &= (2 * DNS_PAYLOAD_MAX - 1);
	if (!payload || bpf_probe_read_user(ev->data, n, payload) != 0)
		n = 0;
	ev->payload_len = n;
	emit(s->buf, sizeof(*ev) + n, EV_DNS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return dns_enter(ctx->args[0], (const void *)ctx->args[1], (const void *)ctx->args[4], NULL,
			 DNS_DIR_SEND, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return dns_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return dns_enter(ctx->args[0], (const void *)ctx->args[1], (const void *)ctx->args[4], NULL,
			 DNS_DIR_RECV, 0);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	return dns_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return dns_enter(ctx->args[0], NULL, NULL, (const struct user_msghdr *)ctx->args[1], DNS_DIR_SEND,
			 0);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return dns_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return dns_enter(ctx->args[0], NULL, NULL, (const struct user_msghdr *)ctx->args[1], DNS_DIR_RECV,
			 0);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	return dns_exit(ctx->ret);
}

/* glibc sends the A and AAAA queries together with sendmmsg: report the first */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct mmsghdr first = {};
	bpf_probe_read_user(&first, sizeof(first), (void *)ctx->args[1]);
	const struct user_msghdr *msg = (const struct user_msghdr *)ctx->args[1];
	struct iovec iov = {};
	if (first.msg_hdr.msg_iov)
		bpf_probe_read_user(&iov, sizeof(iov), first.msg_hdr.msg_iov);
	return dns_enter(ctx->args[0], NULL, NULL, msg, DNS_DIR_SEND, iov.iov_len);
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int exit_sendmmsg(struct trace_event_raw_sys_exit *ctx)
{
	return dns_exit(ctx->ret);
}
