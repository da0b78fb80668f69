/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Sockets behind file descriptors, and their addresses (net and l7 objects). */
#ifndef SENSOR_SOCK_BPF_H
#define SENSOR_SOCK_BPF_H

#include "common.bpf.h"

#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000

/* The struct sock behind fd in the current task, or NULL if fd is no socket. */
static __always_inline struct sock *fd_sock(long fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

static __always_inline void read_addrs(const struct sock *sk, struct net_event *ev)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->family = family;
	ev->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(ev->saddr, 0, 16);
	__builtin_memset(ev->daddr, 0, 16);
	if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&ev->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ev->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)ev->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)ev->daddr, sk, __sk_common.skc_daddr);
	}
}

#endif /* SENSOR_SOCK_BPF_H */
