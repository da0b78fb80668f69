/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The wire format between the kernel programs and the `sensor` daemon: the one
 * source of truth. Every record in the ring buffer starts with struct
 * event_header; `type` says which struct follows. Variable-length strings
 * follow the fixed part in the order the struct documents, each NUL-terminated,
 * with its length (including the NUL) in a *_len field, so a record carries
 * only the bytes it uses.
 *
 * The Rust mirror types live in sensor-bpf/src/wire.rs; its tests check sizes
 * and offsets against the values this header's static asserts pin down.
 * Numbers are stable: never renumber an event type, only append.
 */
#ifndef SENSOR_EVENTS_H
#define SENSOR_EVENTS_H

enum event_type {
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
	EV_OPEN = 4,
	EV_UNLINK = 5,
	EV_RENAME = 6,
	EV_CHMOD = 7,
	EV_LINK = 8,
	EV_SYMLINK = 9,
	EV_CONNECT = 10,
	EV_ACCEPT = 11,
	EV_LISTEN = 12,
	EV_CLOSE = 13,
	EV_DNS = 14,
	/* security-relevant syscalls (struct syscall_event) */
	EV_PTRACE = 15,
	EV_MODULE_LOAD = 16,
	EV_BPF = 17,
	EV_MEMFD_CREATE = 18,
	EV_SOCKET = 19, /* raw and packet sockets only */
	EV_DUP = 20,    /* dup2/dup3 of a socket onto fds 0-2 only */
	EV_SETUID = 21, /* the set*uid / set*gid family */
	EV_MOUNT = 22,
	EV_NAMESPACE = 23, /* setns, unshare */
	EV_UNIX_CONNECT = 24, /* connect on an AF_UNIX socket (struct syscall_event) */
	EV_L7 = 25,           /* a TCP payload of a recognised protocol (struct l7_event) */
	EV_TYPE_MAX = 32,  /* size of per-type arrays (lost counters, enable mask) */
};

#define TASK_COMM_LEN 16
/* Bounds on variable-length fields. */
#define ARGS_MAX 8192       /* argv bytes copied at exec; longer sets EXEC_ARGS_TRUNCATED */
#define PATH_MAX_LEN 4096   /* an assembled path */
#define NAME_MAX_LEN 256    /* one path component, including NUL */
#define PATH_DEPTH_MAX 64   /* components walked up from a dentry (a power of two) */
#define RAW_PATH_MAX 512    /* a path string as the caller passed it */
#define DNS_PAYLOAD_MAX 512 /* bytes of a DNS datagram copied */

struct event_header {
	unsigned long long ts_ns;      /* CLOCK_BOOTTIME, ns */
	unsigned long long cgroup_id;  /* cgroup v2 id of the task */
	unsigned long long start_time; /* thread-group leader start, ns since boot */
	unsigned int type;             /* enum event_type */
	unsigned int pid;              /* tgid */
	unsigned int tid;
	unsigned int ppid;             /* real parent's tgid */
	unsigned int uid;
	unsigned int gid;
	char comm[TASK_COMM_LEN];
};

/* exec: data = argv (NUL-separated, args_len bytes) | exe path | cwd | filename as passed */
#define EXEC_ARGS_TRUNCATED (1 << 0)
#define EXEC_EXE_TRUNCATED (1 << 1)
#define EXEC_CWD_TRUNCATED (1 << 2)
struct exec_event {
	struct event_header hdr;
	unsigned int euid;
	unsigned int egid;
	unsigned int args_len;
	unsigned int argc;
	unsigned short exe_len;
	unsigned short cwd_len;
	unsigned short filename_len;
	unsigned short flags;
	unsigned long long exe_ctime_ns; /* the executable's inode change time, ns since the epoch (0: unknown) */
	char data[];
};

/* fork: hdr is the parent (the caller of fork/clone) */
struct fork_event {
	struct event_header hdr;
	unsigned int child_pid;
	unsigned int child_tid;
	unsigned long long child_start_time;
};

/* exit of a thread-group leader */
struct exit_event {
	struct event_header hdr;
	unsigned int exit_code; /* wait status: (code << 8) | signal */
	unsigned int _pad;
};

/*
 * File operations. Each of up to two paths travels as (path, base):
 *  - FILE_PATH_RESOLVED: `path` is absolute and canonical, walked from the
 *    dentry of the opened file; base is empty.
 *  - otherwise `path` is the string the caller passed (bounded to
 *    RAW_PATH_MAX) and, when it is relative, `base` is the absolute path of the
 *    directory it is relative to (the cwd for AT_FDCWD, else the dirfd's file).
 * User space joins and normalises. data = path | base | path2 | base2.
 * path2 is the new name for rename, link and symlink (for symlink, `path` is
 * the link's target text, which is stored as is).
 */
#define FILE_PATH_RESOLVED (1 << 0)
#define FILE_PATH_TRUNCATED (1 << 1)
#define FILE_BASE_TRUNCATED (1 << 2)
#define FILE_PATH2_TRUNCATED (1 << 3)
#define FILE_BASE2_TRUNCATED (1 << 4)
#define FILE_DIRFD_UNRESOLVED (1 << 5) /* a dirfd that was not an open file */
#define FILE_BASE_IS_CWD (1 << 6)      /* `base` is the caller's current directory */
struct file_event {
	struct event_header hdr;
	long long result; /* syscall return: fd or 0, or -errno */
	unsigned int flags; /* open flags; AT_* flags for *at calls; RENAME_* for renameat2 */
	unsigned int mode;  /* open mode (with O_CREAT) or the new mode for chmod */
	unsigned int syscall_nr;
	unsigned short path_len;
	unsigned short base_len;
	unsigned short path2_len;
	unsigned short base2_len;
	unsigned short info;    /* FILE_* bits */
	unsigned short _pad;
	char data[];
};

/* TCP connection life cycle: connect, accept, listen, close.
 * saddr/sport is always the local end, daddr/dport the remote end. */
#define NET_DIR_OUTBOUND 1
#define NET_DIR_INBOUND 2
struct net_event {
	struct event_header hdr;
	unsigned char saddr[16]; /* IPv4 in the first 4 bytes */
	unsigned char daddr[16];
	unsigned short sport;    /* host byte order */
	unsigned short dport;
	unsigned short family;   /* AF_INET / AF_INET6 */
	unsigned short protocol; /* IPPROTO_TCP / IPPROTO_UDP */
	unsigned int direction;  /* NET_DIR_* (0 for listen) */
	int error;               /* connect: 0 or -errno (e.g. refused) */
	unsigned long long sock_id;     /* kernel socket address, for correlation */
	unsigned long long latency_ns;  /* connect: SYN sent -> established */
	unsigned long long duration_ns; /* close: established -> closed */
	unsigned long long bytes_sent;  /* close: bytes acked by the peer */
	unsigned long long bytes_received;
	unsigned int srtt_us;           /* close: smoothed RTT */
	unsigned int retransmits;       /* close: total retransmitted segments */
};

/* A UDP datagram to or from port 53. data = payload (payload_len bytes). */
#define DNS_DIR_SEND 1
#define DNS_DIR_RECV 2
struct dns_event {
	struct event_header hdr;
	unsigned char saddr[16];
	unsigned char daddr[16];
	unsigned short sport;
	unsigned short dport;
	unsigned short family;
	unsigned short direction; /* DNS_DIR_* */
	unsigned int payload_len; /* bytes copied into data */
	unsigned int total_len;   /* datagram size */
	char data[];
};

/*
 * A security-relevant syscall: its raw arguments, result, and up to three
 * strings (data = str1 | str2 | str3), by type:
 *   module_load: str1 = the module file's path (finit_module), str2 = params
 *   bpf:         str1 = the program's name (BPF_PROG_LOAD only)
 *   memfd_create: str1 = the name
 *   mount:       str1 = source, str2 = target, str3 = filesystem type
 *   unix_connect: str1 = the socket's path (for an abstract socket, its name)
 */
#define SC_OLDFD_IS_SOCKET (1 << 0) /* dup: the duplicated fd is a socket */
#define SC_UNIX_ABSTRACT (1 << 1)   /* unix_connect: an abstract-namespace socket */
struct syscall_event {
	struct event_header hdr;
	long long result;
	unsigned long long args[6];
	unsigned int syscall_nr;
	unsigned short str1_len;
	unsigned short str2_len;
	unsigned short str3_len;
	unsigned short flags;
	unsigned int _pad;
	char data[];
};

/*
 * The first bytes of a send or receive on a TCP socket whose connection
 * carries a protocol the kernel side recognised (an HTTP/1.x request line, a
 * RESP array, a PostgreSQL startup or query). Only those connections leave
 * the kernel; user space parses requests, responses and latency.
 * data = payload (payload_len bytes, at most L7_PAYLOAD_MAX).
 */
#define L7_PAYLOAD_MAX 256
#define L7_DIR_SEND 1
#define L7_DIR_RECV 2
#define L7_PROTO_HTTP 1
#define L7_PROTO_REDIS 2
#define L7_PROTO_PG 3
struct l7_event {
	struct event_header hdr;
	unsigned long long sock_id; /* the kernel socket, as in net_event */
	unsigned char saddr[16];    /* local end */
	unsigned char daddr[16];    /* remote end */
	unsigned short sport;
	unsigned short dport;
	unsigned short family;
	unsigned char direction;    /* L7_DIR_* */
	unsigned char protocol;     /* L7_PROTO_* */
	unsigned int total_len;     /* bytes the call moved */
	unsigned int payload_len;   /* bytes copied into data */
	char data[];
};

/* Values of the path filter (an LPM trie keyed by path prefix). */
#define PATH_FILTER_IGNORE 1
#define PATH_FILTER_WATCH 2
#define PATH_FILTER_KEY_MAX 64
struct path_filter_key {
	unsigned int prefixlen; /* in bits */
	unsigned char data[PATH_FILTER_KEY_MAX];
};

#endif /* SENSOR_EVENTS_H */
