/*
 * hvsim device relay: listens on an AF_UNIX SOCK_SEQPACKET path (the "device node" the shim
 * connects to when the daemon opens /dev/vmbus/NAME) and bridges every connection to Node over
 * stdin/stdout, because Node cannot open SOCK_SEQPACKET sockets. Policy-free: it forwards; hvsim
 * (bridge.ts) decides every result.
 *
 *   usage: relay SOCKET_PATH
 *
 * ---- Node <-> relay framing (stdin: frames from Node, stdout: frames to Node) ----------------
 * Every frame is a 12-byte little-endian header followed by `length` payload bytes:
 *     u32 length   payload bytes after the header (at most 16 MiB)
 *     u16 type     see below
 *     u16 zero     reserved, 0
 *     u32 conn     connection id (1, 2, ... in accept order; 0 = the relay itself)
 *
 * ---- shim <-> relay packets (one SEQPACKET packet each) ------------------------------------
 *     u8 type, 3 zero bytes, payload.
 * The relay turns each packet from connection C into a frame {type, conn C, payload} and each
 * frame from Node for connection C into a packet {type, payload}. Types are shared:
 *
 *   daemon side -> Node (shim packets, forwarded)
 *     0x01 OPEN          i32 open flags, i32 pid, device name ("hv_kvp")  -> answer OPEN_RESULT
 *     0x02 WRITE         the bytes the daemon wrote (one write = one message) -> answer WRITE_RESULT
 *     0x03 READ          u32 count asked, i32 result (bytes returned, or -errno)   (notification)
 *     0x04 POLL          u32 events asked, i32 timeout ms                            (notification)
 *     0x05 IOCTL         u32 cmd (FIFREEZE/FITHAW), mount directory  -> answer IOCTL_RESULT
 *     0x06 FS            i32 pid: this connection is the shim's filesystem channel (FIFREEZE/
 *                        FITHAW of the fake mount table), not an open of the device; it lives
 *                        as long as the daemon, across its closes and reopens of the device
 *     0x07 FORKED        i32 pid: the shim's fork server (HVSIM_FORKSERVER=1) started a child
 *     0x08 CHILD_EXIT    i32 wait status of that child (the fork server waits for RESPAWN)
 *   relay -> Node
 *     0x10 CLOSE         (empty) connection C ended: the daemon closed the fd, or exited/died
 *     0x11 READY         socket path; the relay is listening (conn 0, sent once at start)
 *     0x12 DROPPED       u16 type, u16 0, i32 errno: a frame for C was not delivered (C is gone,
 *                        or its queue is full: EAGAIN)
 *     0x13 LOG           text: a relay diagnostic (conn 0)
 *   Node -> daemon side (sent as packets to C)
 *     0x41 OPEN_RESULT   i32 errno: 0 = the open succeeds, else open() fails with it (EBUSY...)
 *     0x42 WRITE_RESULT  i64: >= 0 what write() returns, < 0 write() fails with errno = -value
 *     0x43 DATA          one message, queued for the daemon's read()
 *     0x46 DATA_KILL     like DATA, and the shim kills the daemon (SIGKILL) inside the read()
 *                        that returns it, after its READ notification: a crash at a defined point
 *     0x44 HANGUP        i32 read errno, i32 write errno, i32 poll revents: the device is gone
 *                        (hvutil_transport_destroy); the connection stays open until the daemon
 *                        closes its fd, which then shows up as CLOSE
 *     0x45 IOCTL_RESULT  i64: >= 0 what ioctl() returns, < 0 it fails with errno = -value
 *     0x47 RESPAWN       (empty) the fork server forks the next child
 *   Node -> relay
 *     0x50 SHUTDOWN      (conn 0) close everything, remove the socket, exit 0
 *     0x51 HOLD          (conn 0) u32 ms: a test hook; once the relay has forwarded the next
 *                        frame to a connection (e.g. a WRITE_RESULT that unblocks the daemon)
 *                        it sleeps that long before it next looks at its connections, so that a
 *                        daemon's packets, closes and new connections pile up meanwhile (to
 *                        reproduce orderings deterministically)
 *
 * The relay also exits (removing the socket) when stdin reaches EOF. Exit status 2 = a protocol
 * error on stdin, 1 = a setup error; the reason is printed on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
	T_OPEN = 0x01,
	T_WRITE = 0x02,
	T_READ = 0x03,
	T_POLL = 0x04,
	T_IOCTL = 0x05,
	T_CLOSE = 0x10,
	T_READY = 0x11,
	T_DROPPED = 0x12,
	T_LOG = 0x13,
	T_HANGUP = 0x44,
	T_SHUTDOWN = 0x50,
	T_HOLD = 0x51,
};

#define HDR 12
#define PKT_HDR 4
#define MAX_PAYLOAD (16u << 20)
#define MAX_CONNS 64

struct conn {
	int fd;
	uint32_t id;
};

static struct conn conns[MAX_CONNS];
static int n_conns;
static uint32_t next_id = 1;
static const char *sock_path;
static unsigned hold_ms;      /* sleep before the next look at the connections */
static unsigned hold_pending; /* HOLD received: arm hold_ms after the next forwarded frame */
static int listen_fd = -1;

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void cleanup(void)
{
	for (int i = 0; i < n_conns; i++)
		close(conns[i].fd);
	n_conns = 0;
	if (listen_fd >= 0)
		close(listen_fd);
	if (sock_path)
		unlink(sock_path);
}

/* One frame in one writev(2) (header and payload together: Node wakes once per frame, not twice). */
static void frame_out(int type, uint32_t conn, const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char h[HDR];
	put_u32(h, (uint32_t)(alen + blen));
	put_u16(h + 4, (uint16_t)type);
	put_u16(h + 6, 0);
	put_u32(h + 8, conn);
	struct iovec iov[3] = { { h, HDR }, { (void *)a, alen }, { (void *)b, blen } };
	struct iovec *v = iov;
	int cnt = 3;
	while (cnt > 0) {
		if (v->iov_len == 0) {
			v++;
			cnt--;
			continue;
		}
		ssize_t n = writev(1, v, cnt);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Node went away: nothing left to relay to. */
			cleanup();
			_exit(0);
		}
		while (cnt > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (unsigned char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
}

static void logf_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	frame_out(T_LOG, 0, buf, (size_t)n, NULL, 0);
}

static int find_conn(uint32_t id)
{
	for (int i = 0; i < n_conns; i++)
		if (conns[i].id == id)
			return i;
	return -1;
}

/* Ordering: conns[] stays in accept order (ascending id), and every connection is drained whole
 * (all its queued packets, then its end) before the next one is looked at and before new
 * connections are accepted. A daemon that closes the device and opens it again has closed the
 * old connection before connecting the new one, so its old packets and CLOSE always reach Node
 * before the new connection's OPEN. */
static void drop_conn(int i)
{
	uint32_t id = conns[i].id;
	close(conns[i].fd);
	memmove(&conns[i], &conns[i + 1], (size_t)(n_conns - i - 1) * sizeof(conns[0]));
	n_conns--;
	frame_out(T_CLOSE, id, NULL, 0, NULL, 0);
}

static void dropped(uint32_t id, int type, int err)
{
	unsigned char p[8];
	put_u16(p, (uint16_t)type);
	put_u16(p + 2, 0);
	put_u32(p + 4, (uint32_t)err);
	frame_out(T_DROPPED, id, p, sizeof(p), NULL, 0);
}

/* A frame from Node. */
static void handle_frame(int type, uint32_t id, const unsigned char *payload, size_t len)
{
	if (type == T_SHUTDOWN) {
		cleanup();
		exit(0);
	}
	if (type == T_HOLD && id == 0) {
		hold_pending = len >= 4 ? get_u32(payload) : 0;
		return;
	}
	int i = find_conn(id);
	if (i < 0) {
		dropped(id, type, ENOTCONN);
		return;
	}
	unsigned char hdr[PKT_HDR] = { (unsigned char)type, 0, 0, 0 };
	struct iovec iov[2] = { { hdr, PKT_HDR }, { (void *)payload, len } };
	struct msghdr mh = { 0 };
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	ssize_t n;
	do
		n = sendmsg(conns[i].fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		dropped(id, type, errno);
	} else if (hold_pending) {
		hold_ms = hold_pending;
		hold_pending = 0;
	}
}

/*
 * Every packet queued on connection i, then its end if it has ended. Returns 1 when the
 * connection was dropped (conns[i] is now the next one), else 0.
 * A peer that closes with packets of ours still unread in its queue (a message the daemon never
 * read) makes our next recv fail once with ECONNRESET (unix_release_sock sets sk_err; recv
 * reports a pending error before queued data); the packets it sent before closing are still
 * queued here and are relayed before the CLOSE, so a notification sent right before a close (the
 * READ of a failed read) is never lost.
 */
static int handle_conn(int i)
{
	int fd = conns[i].fd;
	int resets = 0;
	for (;;) {
		unsigned char peek[PKT_HDR];
		ssize_t total = recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (total < 0 && errno == EINTR)
			continue;
		if (total < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (total < 0 && errno == ECONNRESET && resets++ < 1)
			continue; /* the error is reported once; queued packets follow */
		if (total <= 0) {
			drop_conn(i);
			return 1;
		}
		unsigned char *buf = malloc((size_t)total);
		if (!buf) {
			logf_out("out of memory for a %zd-byte packet", total);
			drop_conn(i);
			return 1;
		}
		ssize_t n;
		do
			n = recv(fd, buf, (size_t)total, MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n != total) {
			free(buf);
			drop_conn(i);
			return 1;
		}
		if (n < PKT_HDR) {
			logf_out("conn %u: %zd-byte packet without a header ignored", conns[i].id, n);
		} else {
			frame_out(buf[0], conns[i].id, buf + PKT_HDR, (size_t)n - PKT_HDR, NULL, 0);
		}
		free(buf);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_un sa = { 0 };
	sa.sun_family = AF_UNIX;
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "relay: socket path longer than %zu bytes: %s\n", sizeof(sa.sun_path) - 1, argv[1]);
		return 1;
	}
	strcpy(sa.sun_path, argv[1]);
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (listen_fd < 0) {
		perror("relay: socket");
		return 1;
	}
	unlink(argv[1]);
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "relay: bind %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	sock_path = argv[1];
	/* The daemon runs as another (unprivileged) user: connecting needs write permission. */
	if (chmod(argv[1], 0666) < 0 || listen(listen_fd, MAX_CONNS) < 0) {
		fprintf(stderr, "relay: chmod/listen %s: %s\n", argv[1], strerror(errno));
		cleanup();
		return 1;
	}
	frame_out(T_READY, 0, argv[1], strlen(argv[1]), NULL, 0);

	unsigned char *in = NULL;
	size_t in_len = 0, in_cap = 0;
	struct pollfd pfd[2 + MAX_CONNS];
	for (;;) {
		if (hold_ms) {
			struct timespec ts = { (time_t)(hold_ms / 1000), (long)(hold_ms % 1000) * 1000000L };
			hold_ms = 0;
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		pfd[0].fd = 0;
		pfd[0].events = POLLIN;
		pfd[1].fd = n_conns < MAX_CONNS ? listen_fd : -1;
		pfd[1].events = POLLIN;
		int n = n_conns;
		for (int i = 0; i < n; i++) {
			pfd[2 + i].fd = conns[i].fd;
			pfd[2 + i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)(2 + n), -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("relay: poll");
			cleanup();
			return 1;
		}
		/* Connections first, oldest first, each drained whole (see drop_conn): a connection's
		 * packets and CLOSE go out before any packet of a younger one. Every connection is
		 * drained, not only those poll reported: one that became readable after poll returned
		 * is still older than a connection accepted below. */
		for (int i = 0; i < n_conns;)
			if (!handle_conn(i))
				i++;
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				conns[n_conns].fd = fd;
				conns[n_conns].id = next_id++;
				n_conns++;
			}
		}
		if (pfd[0].revents) {
			if (in_cap - in_len < 65536) {
				size_t cap = in_cap ? in_cap * 2 : 131072;
				unsigned char *p = realloc(in, cap);
				if (!p) {
					fprintf(stderr, "relay: out of memory\n");
					cleanup();
					return 1;
				}
				in = p;
				in_cap = cap;
			}
			ssize_t r = read(0, in + in_len, in_cap - in_len);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				cleanup();
				return 0;
			}
			in_len += (size_t)r;
			size_t off = 0;
			while (in_len - off >= HDR) {
				uint32_t len = get_u32(in + off);
				int type = in[off + 4] | in[off + 5] << 8;
				uint32_t id = get_u32(in + off + 8);
				if (len > MAX_PAYLOAD) {
					fprintf(stderr, "relay: frame of %u bytes from Node is too large\n", len);
					cleanup();
					return 2;
				}
				if (in_len - off - HDR < len) {
					if (in_cap < HDR + (size_t)len) {
						unsigned char *p = realloc(in, HDR + (size_t)len);
						if (!p) {
							cleanup();
							return 1;
						}
						in = p;
						in_cap = HDR + (size_t)len;
					}
					break;
				}
				handle_frame(type, id, in + off + HDR, len);
				off += HDR + len;
			}
			memmove(in, in + off, in_len - off);
			in_len -= off;
		}
	}
}
