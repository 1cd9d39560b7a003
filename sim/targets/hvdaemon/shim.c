/*
 * hvsim device shim: LD_PRELOAD library that lets hvsim play the Linux kernel side of
 * drivers/hv/hv_utils_transport.c (the /dev/vmbus/hv_kvp, hv_vss, hv_fcopy character devices)
 * for the real hv_kvp_daemon / hv_vss_daemon, and pins every other input of those daemons.
 *
 * Device (open/read/write/poll/close/ioctl on the fd):
 *   open("/dev/vmbus/NAME") connects an AF_UNIX SOCK_SEQPACKET socket to $HVSIM_DEVICE_DIR/NAME
 *   (the relay, relay.c) and asks hvsim whether the open succeeds (OPEN -> OPEN_RESULT errno; e.g.
 *   EBUSY for a second opener). The fd the daemon gets IS that socket. One packet = one message.
 *   write -> WRITE packet, then blocks for WRITE_RESULT: the byte count or -errno hvsim decides.
 *   read  -> blocks for a DATA packet (or a hang-up). A buffer smaller than the message fails with
 *            EINVAL and the message stays queued (MSG_PEEK|MSG_TRUNC), like hvt_op_read. Every
 *            read is reported to hvsim (READ notification: count, result) so the kernel model can
 *            run its on_read callback.
 *   poll  -> POLLIN|POLLRDNORM when a message is queued; the hang-up mask (default
 *            POLLERR|POLLHUP, hvt_op_poll on a destroyed transport) after a HANGUP packet or when
 *            the relay went away. Never POLLOUT (the device never reports it). Each poll on the
 *            device is reported (POLL notification: "the daemon is waiting").
 *   After a hang-up read/write fail with the errnos in the HANGUP packet (default EBADF, as for
 *   HVUTIL_TRANSPORT_DESTROY). The daemon's close() closes the socket; the relay sees it.
 *   Writes use MSG_NOSIGNAL: a real device never raises SIGPIPE.
 *   DATA packets that arrive while the shim waits for a WRITE/IOCTL result are queued in memory
 *   and handed out first (the kernel may queue a reply inside on_msg, before write returns).
 *
 *   A DATA_KILL packet is a DATA packet after whose read() the shim kills the daemon (SIGKILL to
 *   itself, after the READ notification): the daemon has consumed the message and done nothing
 *   with it, a crash at a defined point (hvsim's "before-apply").
 *
 * Filesystem freeze (hv_vss_daemon's vss_do_freeze: open(mnt_dir, O_RDONLY) + ioctl FIFREEZE/
 * FITHAW): open() of a mount directory from the fake mount table returns a placeholder fd
 * (/dev/null) remembered as "fake mount"; FIFREEZE/FITHAW on it is asked of hvsim (IOCTL ->
 * IOCTL_RESULT), so hvsim decides success or failure per mount. These are filesystem ioctls, not
 * device ones: they travel over a connection of their own (the filesystem channel, opened on the
 * first such ioctl with an FS packet, to the socket of the last device opened), which stays up
 * while the daemon closes and reopens the device — hv_vss_daemon.c:247-256 closes the device and
 * only then thaws what it left frozen.
 * FIFREEZE/FITHAW on any other fd is refused here with EPERM and never reaches the kernel.
 * (Below this, the sandbox launcher's seccomp filter and user namespace stop it again.)
 *
 * Fork server (HVSIM_FORKSERVER=1, for fuzzing): the first time the daemon polls or reads the
 * device after it has read one message (its registration reply), the shim forks: the child goes
 * on as the daemon; the parent keeps the registered state, reports FORKED (child pid) on the
 * device connection, waits for the child, reports CHILD_EXIT (wait status) and, on RESPAWN from
 * hvsim, forks the next child from the same state (packets left for the dead child are dropped
 * first). On stderr, "hvsim-shim: fork server: forking a child" comes before each fork (after the
 * output of the state forked from) and "hvsim-shim: fork server: child PID ended (wait status S)"
 * after the child's own output. A daemon that dies on a message is so replaced in well under a millisecond, without a
 * new process, registration or relay connection. Children die with the parent (PDEATHSIG).
 *
 * Pinned inputs (always on; unset variables give fixed defaults, never the host's values):
 *   /var/lib/hyperv[/...]         -> $HVSIM_KVP_DIR[/...]         (open, fopen, access, mkdir, stat, opendir)
 *   /etc/os-release               -> $HVSIM_OS_RELEASE (unset: ENOENT)
 *   /etc/SuSE-release, /etc/redhat-release -> ENOENT
 *   /sys/class/net, /sys/dev/block -> $HVSIM_SYS_DIR/class/net, /dev/block (unset: ENOENT)
 *   /proc/mounts, /proc/self/mounts, /etc/mtab (setmntent, fopen) -> $HVSIM_MOUNTS (unset: /dev/null)
 *   stat(fsname of the fake table) -> a block device with st_rdev = 240:N (N = 1-based line), so
 *     is_dev_loop() looks at $HVSIM_SYS_DIR/dev/block/240:N/{loop,slaves}
 *   uname        -> HVSIM_UNAME_SYSNAME/RELEASE/VERSION/MACHINE, nodename = HVSIM_HOSTNAME
 *   gethostname  -> HVSIM_HOSTNAME (default hvsim-guest)
 *   getaddrinfo  -> the hostname / $HVSIM_FQDN / localhost resolve to 127.0.1.1 with canonical
 *                   name $HVSIM_FQDN (default the hostname); anything else EAI_NONAME. No DNS.
 *   getifaddrs   -> $HVSIM_IFADDRS: "NAME ADDR/PREFIX" entries separated by ';' (default none)
 *   getpid       -> $HVSIM_PID (default 4242): the daemons print it ("KVP starting; pid is:N") and
 *                   put it in lock records (ignored by F_SETLK/F_SETLKW). The real pid travels
 *                   in the OPEN packet.
 *   syslog       -> stderr, one line each: "syslog:<level>:<ident>: <message>"
 *   system/popen -> refused (-1 / NULL, errno ENOSYS), logged: GET_IP_INFO runs no shell tools
 *   daemon()     -> no fork (the daemon stays the bridge's child even without -n), logged
 * Shim diagnostics go to stderr as "hvsim-shim: ...".
 *
 * Packet on the socket: u8 type, 3 zero bytes, payload. Types and payloads: see relay.c.
 * Single-threaded use assumed (the daemons are single-threaded).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/fs.h>
#include <mntent.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <dirent.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifndef FIFREEZE
#define FIFREEZE _IOWR('X', 119, int)
#endif
#ifndef FITHAW
#define FITHAW _IOWR('X', 120, int)
#endif

#define EXPORT __attribute__((visibility("default")))

/* Packet types (same numbers as the relay <-> Node frames, see relay.c). */
enum {
	PKT_OPEN = 0x01,
	PKT_WRITE = 0x02,
	PKT_READ = 0x03,
	PKT_POLL = 0x04,
	PKT_IOCTL = 0x05,
	PKT_FS = 0x06,
	PKT_FORKED = 0x07,
	PKT_CHILD_EXIT = 0x08,
	PKT_OPEN_RESULT = 0x41,
	PKT_WRITE_RESULT = 0x42,
	PKT_DATA = 0x43,
	PKT_HANGUP = 0x44,
	PKT_IOCTL_RESULT = 0x45,
	PKT_DATA_KILL = 0x46,
	PKT_RESPAWN = 0x47,
};
#define PKT_HDR 4
#define FAKE_BLOCK_MAJOR 240 /* "local/experimental use" in devices.txt */

/* ------------------------------------------------------------------------------------------ */
/* Real functions */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_ioctl)(int, unsigned long, ...);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static int (*real_access)(const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_stat)(const char *, struct stat *);
static int (*real_stat64)(const char *, struct stat64 *);
static DIR *(*real_opendir)(const char *);
static FILE *(*real_setmntent)(const char *, const char *);
static void (*real_freeaddrinfo)(struct addrinfo *);
static void (*real_freeifaddrs)(struct ifaddrs *);

static void *next_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	return p;
}

static void resolve(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	real_open = next_sym("open");
	real_open64 = next_sym("open64");
	real_read = next_sym("read");
	real_write = next_sym("write");
	real_close = next_sym("close");
	real_poll = next_sym("poll");
	real_ioctl = next_sym("ioctl");
	real_fopen = next_sym("fopen");
	real_fopen64 = next_sym("fopen64");
	real_access = next_sym("access");
	real_mkdir = next_sym("mkdir");
	real_stat = next_sym("stat");
	real_stat64 = next_sym("stat64");
	real_opendir = next_sym("opendir");
	real_setmntent = next_sym("setmntent");
	real_freeaddrinfo = next_sym("freeaddrinfo");
	real_freeifaddrs = next_sym("freeifaddrs");
}

/* ------------------------------------------------------------------------------------------ */
/* Diagnostics: one write(2) per line, so lines from the daemon and the shim never interleave. */

static void write_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = real_write ? real_write(2, buf, len) : (ssize_t)len;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

__attribute__((format(printf, 1, 2))) static void shim_log(const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	int n = snprintf(buf, sizeof(buf), "hvsim-shim: ");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	write_stderr(buf, len);
	errno = saved;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration (read once) */

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return (v && *v) ? v : def;
}

#define MAX_MOUNTS 256
struct fake_mount {
	char *fsname;
	char *dir;
};
static struct fake_mount mounts[MAX_MOUNTS];
static int n_mounts;

static const char *mounts_file(void)
{
	return env_or("HVSIM_MOUNTS", "/dev/null");
}

static void load_mounts(void)
{
	static int loaded;
	if (loaded)
		return;
	loaded = 1;
	resolve();
	FILE *f = real_setmntent(mounts_file(), "r");
	if (!f) {
		shim_log("cannot read the mount table %s: %s", mounts_file(), strerror(errno));
		return;
	}
	struct mntent ent;
	char buf[4096];
	/* getmntent_r: the daemon's own getmntent() keeps its static buffer untouched. */
	while (n_mounts < MAX_MOUNTS && getmntent_r(f, &ent, buf, sizeof(buf))) {
		mounts[n_mounts].fsname = strdup(ent.mnt_fsname);
		mounts[n_mounts].dir = strdup(ent.mnt_dir);
		n_mounts++;
	}
	endmntent(f);
}

static int mount_index_by_dir(const char *path)
{
	load_mounts();
	for (int i = 0; i < n_mounts; i++)
		if (mounts[i].dir && strcmp(mounts[i].dir, path) == 0)
			return i;
	return -1;
}

static int mount_index_by_fsname(const char *path)
{
	if (!path)
		return -1;
	load_mounts();
	for (int i = 0; i < n_mounts; i++)
		if (mounts[i].fsname && strcmp(mounts[i].fsname, path) == 0)
			return i;
	return -1;
}

__attribute__((constructor)) static void shim_init(void)
{
	resolve();
	load_mounts();
}

/* ------------------------------------------------------------------------------------------ */
/* Path redirection */

struct redirect {
	const char *from;   /* absolute path; also matches from + "/..." */
	const char *env;    /* variable holding the target (NULL: always ENOENT) */
	const char *suffix; /* appended to the target */
	const char *def;    /* target when the variable is unset (NULL: ENOENT) */
};

static const struct redirect redirects[] = {
	{ "/var/lib/hyperv", "HVSIM_KVP_DIR", "", NULL },
	{ "/etc/os-release", "HVSIM_OS_RELEASE", "", NULL },
	{ "/etc/SuSE-release", NULL, "", NULL },
	{ "/etc/redhat-release", NULL, "", NULL },
	{ "/sys/class/net", "HVSIM_SYS_DIR", "/class/net", NULL },
	{ "/sys/dev/block", "HVSIM_SYS_DIR", "/dev/block", NULL },
	{ "/proc/mounts", "HVSIM_MOUNTS", "", "/dev/null" },
	{ "/proc/self/mounts", "HVSIM_MOUNTS", "", "/dev/null" },
	{ "/etc/mtab", "HVSIM_MOUNTS", "", "/dev/null" },
};

/*
 * Returns the path to use: `path` itself, a redirected path in `out`, or NULL with errno set
 * (the input is pinned to "absent").
 */
static const char *redirect_path(const char *path, char *out, size_t outlen)
{
	if (!path)
		return path;
	for (size_t i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
		const struct redirect *r = &redirects[i];
		size_t n = strlen(r->from);
		if (strncmp(path, r->from, n) != 0 || (path[n] != '\0' && path[n] != '/'))
			continue;
		const char *base = r->env ? getenv(r->env) : NULL;
		const char *suffix = r->suffix;
		if (!base || !*base) {
			base = r->def;
			suffix = "";
		}
		if (!base) {
			errno = ENOENT;
			return NULL;
		}
		int m = snprintf(out, outlen, "%s%s%s", base, suffix, path + n);
		if (m < 0 || (size_t)m >= outlen) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		return out;
	}
	return path;
}

/* ------------------------------------------------------------------------------------------ */
/* Device connections */

struct msg {
	struct msg *next;
	size_t len;
	int die; /* a DATA_KILL message: the daemon dies in the read() that returns it */
	unsigned char data[];
};

struct dev {
	char name[64];
	int hung;
	int read_errno;
	int write_errno;
	short poll_revents;
	unsigned reads;           /* messages read (the fork server starts after the first) */
	struct msg *head, *tail; /* DATA received while waiting for a result */
};

#define MAX_FDS 4096
static struct dev *devs[MAX_FDS];
static int fake_mount_fd[MAX_FDS]; /* mount index + 1, 0 = not a fake mount fd */
static char fs_dev_name[64]; /* the device whose socket the filesystem channel connects to */
static int fs_fd = -1;       /* the filesystem channel (FIFREEZE/FITHAW), -1 before first use */
static struct dev fs_dev;    /* its hang-up state */

static struct dev *dev_of(int fd)
{
	return (fd >= 0 && fd < MAX_FDS) ? devs[fd] : NULL;
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

static int64_t get_i64(const unsigned char *p)
{
	uint64_t v = (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
	return (int64_t)v;
}

static void mark_hung(struct dev *d, const unsigned char *payload, size_t len)
{
	d->hung = 1;
	d->read_errno = EBADF;
	d->write_errno = EBADF;
	d->poll_revents = POLLERR | POLLHUP;
	if (payload && len >= 12) {
		d->read_errno = (int)get_u32(payload);
		d->write_errno = (int)get_u32(payload + 4);
		d->poll_revents = (short)get_u32(payload + 8);
	}
}

/* Sends one packet (type + two payload parts); returns 0 or -1 with errno. */
static int send_pkt(int fd, int type, const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char hdr[PKT_HDR] = { (unsigned char)type, 0, 0, 0 };
	struct iovec iov[3] = {
		{ hdr, PKT_HDR },
		{ (void *)a, alen },
		{ (void *)b, blen },
	};
	struct msghdr mh = { 0 };
	mh.msg_iov = iov;
	mh.msg_iovlen = 3;
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Best-effort notification (READ, POLL): failures are ignored. */
static void notify(int fd, int type, const void *payload, size_t len)
{
	int saved = errno;
	(void)send_pkt(fd, type, payload, len, NULL, 0);
	errno = saved;
}

/*
 * Receives one whole packet. Returns it (malloc'd, type in data[0]) or NULL: *eof = 1 when the
 * peer is gone, else errno is set (EINTR / EAGAIN with MSG_DONTWAIT).
 */
static struct msg *recv_pkt(int fd, int flags, int *eof)
{
	*eof = 0;
	unsigned char peek[PKT_HDR];
	ssize_t total;
	for (;;) {
		total = recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_TRUNC | flags);
		if (total >= 0 || errno != EINTR || (flags & MSG_DONTWAIT))
			break;
	}
	if (total < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return NULL;
		*eof = 1;
		return NULL;
	}
	if (total == 0) {
		*eof = 1;
		return NULL;
	}
	struct msg *m = malloc(sizeof(*m) + (size_t)total);
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	ssize_t n;
	do
		n = recv(fd, m->data, (size_t)total, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != total) {
		free(m);
		*eof = 1;
		return NULL;
	}
	m->next = NULL;
	m->len = (size_t)total;
	return m;
}

static int is_data(int type)
{
	return type == PKT_DATA || type == PKT_DATA_KILL;
}

/* The crash point of a DATA_KILL message: the read() returned to nobody. */
static void die_after_read(const struct dev *d)
{
	shim_log("%s: killed inside read() as asked (DATA_KILL)", d->name);
	syscall(SYS_kill, (pid_t)syscall(SYS_getpid), SIGKILL);
	_exit(137); /* not reached */
}

static void stash(struct dev *d, struct msg *m)
{
	m->die = m->data[0] == PKT_DATA_KILL;
	/* keep only the message bytes */
	memmove(m->data, m->data + PKT_HDR, m->len - PKT_HDR);
	m->len -= PKT_HDR;
	if (d->tail)
		d->tail->next = m;
	else
		d->head = m;
	d->tail = m;
}

/*
 * Waits for a packet of type `want` on device fd, queueing DATA and obeying HANGUP meanwhile.
 * Returns the packet (caller frees) or NULL when the device hung up / the peer went away.
 */
static struct msg *wait_result(int fd, struct dev *d, int want)
{
	while (!d->hung) {
		int eof;
		struct msg *m = recv_pkt(fd, 0, &eof);
		if (!m) {
			if (eof)
				mark_hung(d, NULL, 0);
			continue;
		}
		if (m->len < PKT_HDR) {
			free(m);
			continue;
		}
		int type = m->data[0];
		if (type == want)
			return m;
		if (is_data(type)) {
			stash(d, m);
			continue;
		}
		if (type == PKT_HANGUP)
			mark_hung(d, m->data + PKT_HDR, m->len - PKT_HDR);
		else
			shim_log("%s: unexpected packet type 0x%02x while waiting for 0x%02x", d->name, type, want);
		free(m);
	}
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/*
 * Self-contained AFL++ mode (HVSIM_AFL_INPUT=FILE, "-" = stdin): no relay, no hvsim. The shim is
 * the whole device: open succeeds (the fd is /dev/null, never read), every write succeeds with its
 * byte count, and reads return, in order, the messages of $HVSIM_AFL_PRELUDE (records of a u32
 * little-endian length and that many bytes: what the kernel answers to the registration, written
 * by hvsim from its kernel model) and then the AFL input as ONE message. When the daemon first
 * waits for a message after the prelude, the shim starts AFL's deferred fork server
 * (__afl_manual_init, looked up with dlsym; AFL_DEFER_FORKSRV=1) so every input starts from the
 * registered daemon, then reads the input. The input's end: the daemon waits for the device again
 * (poll/read with nothing queued), or opens it again (it gave up on it): _exit(0).
 */
static int afl_mode = -1; /* -1 undecided, 0 off, 1 on */
static int afl_stage;     /* 0 prelude, 1 input queued */

static int afl_on(void)
{
	if (afl_mode < 0) {
		const char *e = getenv("HVSIM_AFL_INPUT");
		afl_mode = e && *e ? 1 : 0;
	}
	return afl_mode;
}

static void afl_queue(struct dev *d, const unsigned char *data, size_t len)
{
	struct msg *m = malloc(sizeof(*m) + len + 1);
	if (!m)
		_exit(0);
	m->next = NULL;
	m->len = len;
	m->die = 0;
	memcpy(m->data, data, len);
	if (d->tail)
		d->tail->next = m;
	else
		d->head = m;
	d->tail = m;
}

#define AFL_MAX_INPUT (1u << 20)

static unsigned char *afl_slurp(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? 0 : real_open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		shim_log("afl: cannot open %s (%s)", path, strerror(errno));
		return NULL;
	}
	unsigned char *buf = malloc(AFL_MAX_INPUT);
	size_t n = 0;
	while (buf && n < AFL_MAX_INPUT) {
		ssize_t r = real_read(fd, buf + n, AFL_MAX_INPUT - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (fd != 0)
		real_close(fd);
	*len = n;
	return buf;
}

static int afl_dev_open(const char *name, int flags)
{
	if (afl_stage)
		_exit(0); /* the daemon reopens the device after the input: this input is done */
	int fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
	if (fd < 0)
		return -1;
	if (fd >= MAX_FDS) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	struct dev *d = calloc(1, sizeof(*d));
	if (!d) {
		real_close(fd);
		errno = ENOMEM;
		return -1;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	const char *prelude = getenv("HVSIM_AFL_PRELUDE");
	if (prelude && *prelude) {
		size_t len = 0;
		unsigned char *p = afl_slurp(prelude, &len);
		for (size_t off = 0; p && off + 4 <= len;) {
			uint32_t n = get_u32(p + off);
			if (n > len - off - 4)
				break;
			afl_queue(d, p + off + 4, n);
			off += 4 + n;
		}
		free(p);
	}
	devs[fd] = d;
	return fd;
}

/* Nothing queued and the daemon waits: start the input, or end it. */
static void afl_next(struct dev *d)
{
	if (afl_stage)
		_exit(0); /* answered and idle again */
	afl_stage = 1;
	void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "__afl_manual_init");
	if (init)
		init();
	/*
	 * From here on this is one input's run (the fork server's child). The daemon registered with
	 * empty pool files, so empty them again: what the previous input's SET wrote is not this
	 * input's state (the files are shared with the fork server; the daemon re-reads them per op).
	 */
	const char *pools = getenv("HVSIM_KVP_DIR");
	for (int i = 0; pools && *pools && i < 5; i++) {
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/.kvp_pool_%d", pools, i) < (int)sizeof(path))
			(void)truncate(path, 0);
	}
	size_t len = 0;
	unsigned char *p = afl_slurp(getenv("HVSIM_AFL_INPUT"), &len);
	if (!p || len == 0)
		_exit(0);
	/*
	 * HVSIM_AFL_SIZE: the kernel's message size. The kernel always hands the daemon a whole
	 * message (hv_kvp.c / hv_snapshot.c copy into a full struct), so an input is cut or
	 * zero-padded to it: a length-changing mutation still tests the daemon, not its length check.
	 */
	const char *sz = getenv("HVSIM_AFL_SIZE");
	long want = sz && *sz ? strtol(sz, NULL, 10) : 0;
	if (want > 0 && want <= (long)AFL_MAX_INPUT) {
		if (len < (size_t)want)
			memset(p + len, 0, (size_t)want - len);
		len = (size_t)want;
	}
	afl_queue(d, p, len);
	free(p);
}

static ssize_t afl_read(struct dev *d, void *buf, size_t count)
{
	if (!d->head)
		afl_next(d);
	struct msg *m = d->head;
	if (count < m->len) {
		errno = EINVAL; /* like hvt_op_read: the message stays queued */
		return -1;
	}
	memcpy(buf, m->data, m->len);
	ssize_t len = (ssize_t)m->len;
	d->head = m->next;
	if (!d->head)
		d->tail = NULL;
	free(m);
	d->reads++;
	return len;
}

static int dev_open(const char *name, int flags)
{
	if (afl_on())
		return afl_dev_open(name, flags);
	const char *dir = getenv("HVSIM_DEVICE_DIR");
	if (!dir || !*dir) {
		shim_log("open /dev/vmbus/%s: HVSIM_DEVICE_DIR is not set; no device", name);
		errno = ENOENT;
		return -1;
	}
	struct sockaddr_un sa = { 0 };
	sa.sun_family = AF_UNIX;
	int m = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	if (m < 0 || (size_t)m >= sizeof(sa.sun_path)) {
		shim_log("open /dev/vmbus/%s: socket path too long", name);
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -1;
	if (fd >= MAX_FDS) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		shim_log("open /dev/vmbus/%s: no device at %s (%s)", name, sa.sun_path, strerror(errno));
		real_close(fd);
		errno = ENOENT;
		return -1;
	}
	struct dev *d = calloc(1, sizeof(*d));
	if (!d) {
		real_close(fd);
		errno = ENOMEM;
		return -1;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	unsigned char payload[8];
	put_u32(payload, (uint32_t)flags);
	put_u32(payload + 4, (uint32_t)syscall(SYS_getpid)); /* the real one, not the pinned getpid() */
	if (send_pkt(fd, PKT_OPEN, payload, sizeof(payload), name, strlen(name)) < 0) {
		int e = errno;
		free(d);
		real_close(fd);
		shim_log("open /dev/vmbus/%s: send failed (%s)", name, strerror(e));
		errno = ENXIO;
		return -1;
	}
	struct msg *r = wait_result(fd, d, PKT_OPEN_RESULT);
	int err = ENXIO;
	if (r) {
		err = r->len >= PKT_HDR + 4 ? (int)get_u32(r->data + PKT_HDR) : EPROTO;
		free(r);
	} else {
		shim_log("open /dev/vmbus/%s: the relay closed the connection before answering", name);
	}
	if (err != 0) {
		while (d->head) {
			struct msg *n = d->head->next;
			free(d->head);
			d->head = n;
		}
		free(d);
		real_close(fd);
		errno = err;
		return -1;
	}
	devs[fd] = d;
	snprintf(fs_dev_name, sizeof(fs_dev_name), "%s", name);
	return fd;
}

static void dev_free(int fd)
{
	struct dev *d = devs[fd];
	devs[fd] = NULL;
	while (d && d->head) {
		struct msg *n = d->head->next;
		free(d->head);
		d->head = n;
	}
	free(d);
}

static void notify_read(int fd, size_t count, int64_t result)
{
	unsigned char p[8];
	put_u32(p, count > 0xffffffffu ? 0xffffffffu : (uint32_t)count);
	put_u32(p + 4, (uint32_t)(int32_t)result);
	notify(fd, PKT_READ, p, sizeof(p));
}

static int fork_server_state; /* 0 not decided, 1 off, 2 done (a child, or fork failed), 3 on, not started */

/*
 * The fork server (see the top of the file). Returns in a child (or when fork fails: the daemon
 * goes on unforked); the parent never returns: it exits when hvsim goes away.
 */
static void fork_server(int fd, struct dev *d)
{
	if (fork_server_state == 0) {
		const char *e = getenv("HVSIM_FORKSERVER");
		fork_server_state = e && strcmp(e, "1") == 0 ? 3 : 1;
	}
	if (fork_server_state != 3 || d->reads < 1 || d->head || d->hung)
		return;
	fork_server_state = 2;
	pid_t parent = (pid_t)syscall(SYS_getpid);
	for (;;) {
		/* Before the fork: everything on stderr ahead of this line is the registered state's. */
		shim_log("fork server: forking a child");
		pid_t pid = fork();
		if (pid < 0) {
			shim_log("fork server: fork failed (%s); going on without it", strerror(errno));
			return;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(137);
			return;
		}
		unsigned char p[4];
		put_u32(p, (uint32_t)pid);
		notify(fd, PKT_FORKED, p, sizeof(p));
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* This line follows everything the child wrote on stderr (the same pipe): hvsim takes
		 * the child's exit as complete once it has both this line and CHILD_EXIT, which follows
		 * the child's packets on the device connection. */
		shim_log("fork server: child %d ended (wait status %d)", (int)pid, status);
		put_u32(p, (uint32_t)status);
		notify(fd, PKT_CHILD_EXIT, p, sizeof(p));
		for (;;) {
			int eof;
			struct msg *m = recv_pkt(fd, 0, &eof);
			if (!m) {
				if (eof)
					_exit(0); /* hvsim is gone */
				continue;
			}
			int type = m->len ? m->data[0] : 0;
			free(m);
			if (type == PKT_RESPAWN)
				break;
		}
	}
}

static ssize_t dev_read(int fd, struct dev *d, void *buf, size_t count)
{
	if (afl_on())
		return afl_read(d, buf, count);
	fork_server(fd, d);
	for (;;) {
		if (d->head) {
			struct msg *m = d->head;
			if (count < m->len) {
				notify_read(fd, count, -EINVAL);
				errno = EINVAL;
				return -1;
			}
			memcpy(buf, m->data, m->len);
			ssize_t len = (ssize_t)m->len;
			int die = m->die;
			d->head = m->next;
			if (!d->head)
				d->tail = NULL;
			free(m);
			d->reads++;
			notify_read(fd, count, len);
			if (die)
				die_after_read(d);
			return len;
		}
		if (d->hung) {
			notify_read(fd, count, -d->read_errno);
			errno = d->read_errno;
			return -1;
		}
		unsigned char hdr[PKT_HDR];
		ssize_t total = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_TRUNC);
		if (total < 0) {
			if (errno == EINTR)
				return -1; /* like hvt_op_read's wait_event_interruptible */
			mark_hung(d, NULL, 0);
			continue;
		}
		if (total == 0) {
			mark_hung(d, NULL, 0);
			continue;
		}
		if (total >= PKT_HDR && is_data(hdr[0])) {
			size_t len = (size_t)total - PKT_HDR;
			if (count < len) {
				notify_read(fd, count, -EINVAL);
				errno = EINVAL; /* the message stays queued */
				return -1;
			}
			struct iovec iov[2] = { { hdr, PKT_HDR }, { buf, len } };
			struct msghdr mh = { 0 };
			mh.msg_iov = iov;
			mh.msg_iovlen = 2;
			ssize_t n;
			do
				n = recvmsg(fd, &mh, MSG_DONTWAIT);
			while (n < 0 && errno == EINTR);
			if (n != total) {
				mark_hung(d, NULL, 0);
				continue;
			}
			d->reads++;
			notify_read(fd, count, (int64_t)len);
			if (hdr[0] == PKT_DATA_KILL)
				die_after_read(d);
			return (ssize_t)len;
		}
		int eof;
		struct msg *m = recv_pkt(fd, MSG_DONTWAIT, &eof);
		if (!m) {
			if (eof)
				mark_hung(d, NULL, 0);
			continue;
		}
		if (m->len >= PKT_HDR && m->data[0] == PKT_HANGUP)
			mark_hung(d, m->data + PKT_HDR, m->len - PKT_HDR);
		else
			shim_log("%s: unexpected packet type 0x%02x in read", d->name, m->len ? m->data[0] : 0);
		free(m);
	}
}

static ssize_t dev_write(int fd, struct dev *d, const void *buf, size_t count)
{
	if (afl_on())
		return (ssize_t)count; /* the kernel takes the daemon's answer */
	if (d->hung) {
		errno = d->write_errno;
		return -1;
	}
	if (send_pkt(fd, PKT_WRITE, buf, count, NULL, 0) < 0) {
		if (errno == EMSGSIZE || errno == ENOBUFS || errno == ENOMEM)
			return -1;
		mark_hung(d, NULL, 0);
		errno = d->write_errno;
		return -1;
	}
	struct msg *r = wait_result(fd, d, PKT_WRITE_RESULT);
	if (!r) {
		errno = d->write_errno;
		return -1;
	}
	int64_t v = r->len >= PKT_HDR + 8 ? get_i64(r->data + PKT_HDR) : -EPROTO;
	free(r);
	if (v < 0) {
		errno = (int)-v;
		return -1;
	}
	return (ssize_t)v;
}

/* What the device reports to poll right now without blocking; -1 = nothing yet. */
static short dev_poll_now(int fd, struct dev *d)
{
	if (afl_on()) {
		if (!d->head)
			afl_next(d);
		return POLLIN | POLLRDNORM;
	}
	for (;;) {
		if (d->head)
			return POLLIN | POLLRDNORM;
		if (d->hung)
			return d->poll_revents;
		unsigned char hdr[PKT_HDR];
		ssize_t total = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (total < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return -1;
			mark_hung(d, NULL, 0);
			continue;
		}
		if (total == 0) {
			mark_hung(d, NULL, 0);
			continue;
		}
		if (total >= PKT_HDR && is_data(hdr[0]))
			return POLLIN | POLLRDNORM;
		int eof;
		struct msg *m = recv_pkt(fd, MSG_DONTWAIT, &eof);
		if (!m) {
			if (eof)
				mark_hung(d, NULL, 0);
			else
				return -1;
			continue;
		}
		if (m->len >= PKT_HDR && m->data[0] == PKT_HANGUP)
			mark_hung(d, m->data + PKT_HDR, m->len - PKT_HDR);
		else
			shim_log("%s: unexpected packet type 0x%02x in poll", d->name, m->len ? m->data[0] : 0);
		free(m);
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dev_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct pollfd small[16];
	short small_pre[16];
	struct pollfd *tmp = nfds <= 16 ? small : calloc(nfds, sizeof(*tmp));
	short *pre = nfds <= 16 ? small_pre : calloc(nfds, sizeof(*pre)); /* -1: ask the kernel */
	if (!tmp || !pre) {
		if (tmp != small)
			free(tmp);
		if (pre != small_pre)
			free(pre);
		errno = ENOMEM;
		return -1;
	}
	for (nfds_t i = 0; i < nfds; i++) {
		struct dev *d = dev_of(fds[i].fd);
		if (d)
			fork_server(fds[i].fd, d);
	}
	long long deadline = timeout >= 0 ? now_ms() + timeout : -1;
	int first = 1;
	int result;
	for (;;) {
		int immediate = 0;
		for (nfds_t i = 0; i < nfds; i++) {
			tmp[i] = fds[i];
			tmp[i].revents = 0;
			pre[i] = -1;
			struct dev *d = dev_of(fds[i].fd);
			if (!d)
				continue;
			if (first) {
				unsigned char p[8];
				put_u32(p, (uint32_t)(uint16_t)fds[i].events);
				put_u32(p + 4, (uint32_t)timeout);
				notify(fds[i].fd, PKT_POLL, p, sizeof(p));
			}
			short now = dev_poll_now(fds[i].fd, d);
			if (now >= 0) {
				tmp[i].fd = -1; /* decided here; the kernel skips negative fds */
				pre[i] = (short)(now & (fds[i].events | POLLERR | POLLHUP));
				if (pre[i])
					immediate = 1;
			} else {
				tmp[i].events = POLLIN;
			}
		}
		first = 0;
		long long left = timeout < 0 ? -1 : deadline - now_ms();
		int wait = immediate ? 0 : timeout < 0 ? -1 : (int)(left > 0 ? left : 0);
		int n = real_poll(tmp, nfds, wait);
		if (n < 0) {
			result = -1;
			break;
		}
		int count = 0;
		for (nfds_t i = 0; i < nfds; i++) {
			struct dev *d = dev_of(fds[i].fd);
			if (d && pre[i] >= 0) {
				fds[i].revents = pre[i];
			} else if (d) {
				short now = tmp[i].revents ? dev_poll_now(fds[i].fd, d) : -1;
				fds[i].revents = now >= 0 ? (short)(now & (fds[i].events | POLLERR | POLLHUP)) : 0;
			} else {
				fds[i].revents = tmp[i].revents;
			}
			if (fds[i].revents)
				count++;
		}
		if (count > 0 || timeout == 0 || (timeout > 0 && now_ms() >= deadline)) {
			result = count;
			break;
		}
	}
	if (tmp != small)
		free(tmp);
	if (pre != small_pre)
		free(pre);
	return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks: device and files */

static int do_open(int (*real)(const char *, int, ...), const char *path, int flags, mode_t mode)
{
	resolve();
	if (path && strncmp(path, "/dev/vmbus/", 11) == 0 && path[11] && !strchr(path + 11, '/'))
		return dev_open(path + 11, flags);
	if (path && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_CREAT)) {
		int idx = mount_index_by_dir(path);
		if (idx >= 0) {
			int fd = real("/dev/null", O_RDONLY | (flags & O_CLOEXEC));
			if (fd >= 0 && fd < MAX_FDS)
				fake_mount_fd[fd] = idx + 1;
			return fd;
		}
	}
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return -1;
	return real(p, flags, mode);
}

EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | __O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	resolve();
	return do_open(real_open, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | __O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	resolve();
	return do_open(real_open64 ? real_open64 : real_open, path, flags, mode);
}

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	resolve();
	struct dev *d = dev_of(fd);
	return d ? dev_read(fd, d, buf, count) : real_read(fd, buf, count);
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	resolve();
	struct dev *d = dev_of(fd);
	return d ? dev_write(fd, d, buf, count) : real_write(fd, buf, count);
}

EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	resolve();
	for (nfds_t i = 0; i < nfds; i++)
		if (dev_of(fds[i].fd))
			return dev_poll(fds, nfds, timeout);
	return real_poll(fds, nfds, timeout);
}

EXPORT int close(int fd)
{
	resolve();
	if (dev_of(fd))
		dev_free(fd);
	if (fd >= 0 && fd < MAX_FDS)
		fake_mount_fd[fd] = 0;
	return real_close(fd);
}

/* The filesystem channel: connected on first use to the last opened device's socket. */
static int fs_channel(void)
{
	if (fs_fd >= 0 && !fs_dev.hung)
		return fs_fd;
	if (fs_fd >= 0) {
		real_close(fs_fd);
		fs_fd = -1;
	}
	const char *dir = getenv("HVSIM_DEVICE_DIR");
	if (!dir || !*dir || !fs_dev_name[0])
		return -1;
	struct sockaddr_un sa = { 0 };
	sa.sun_family = AF_UNIX;
	int m = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, fs_dev_name);
	if (m < 0 || (size_t)m >= sizeof(sa.sun_path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		real_close(fd);
		return -1;
	}
	unsigned char p[4];
	put_u32(p, (uint32_t)syscall(SYS_getpid));
	if (send_pkt(fd, PKT_FS, p, sizeof(p), NULL, 0) < 0) {
		real_close(fd);
		return -1;
	}
	memset(&fs_dev, 0, sizeof(fs_dev));
	snprintf(fs_dev.name, sizeof(fs_dev.name), "filesystem channel");
	fs_fd = fd;
	return fd;
}

static int fake_freeze(int fd, unsigned long req)
{
	int idx = fake_mount_fd[fd] - 1;
	const char *name = req == FIFREEZE ? "FIFREEZE" : "FITHAW";
	if (afl_on())
		return 0; /* AFL mode: no hvsim to ask; every freeze and thaw succeeds */
	int dfd = fs_channel();
	struct dev *d = &fs_dev;
	if (dfd < 0) {
		shim_log("%s %s: no device was opened, nobody to ask; refused with EPERM", name, mounts[idx].dir);
		errno = EPERM;
		return -1;
	}
	unsigned char p[4];
	put_u32(p, (uint32_t)req);
	if (send_pkt(dfd, PKT_IOCTL, p, sizeof(p), mounts[idx].dir, strlen(mounts[idx].dir)) < 0) {
		mark_hung(d, NULL, 0);
		errno = EIO;
		return -1;
	}
	struct msg *r = wait_result(dfd, d, PKT_IOCTL_RESULT);
	if (!r) {
		shim_log("%s %s: the device hung up before answering; EIO", name, mounts[idx].dir);
		errno = EIO;
		return -1;
	}
	int64_t v = r->len >= PKT_HDR + 8 ? get_i64(r->data + PKT_HDR) : -EPROTO;
	free(r);
	if (v < 0) {
		errno = (int)-v;
		return -1;
	}
	return (int)v;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	resolve();
	unsigned int cmd = (unsigned int)req; /* the kernel takes the command as unsigned int */
	if (cmd == FIFREEZE || cmd == FITHAW) {
		if (fd >= 0 && fd < MAX_FDS && fake_mount_fd[fd])
			return fake_freeze(fd, cmd);
		shim_log("%s on fd %d (not a mount of the fake table) refused with EPERM",
			 cmd == FIFREEZE ? "FIFREEZE" : "FITHAW", fd);
		errno = EPERM;
		return -1;
	}
	return real_ioctl(fd, req, arg);
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return NULL;
	return real_fopen(p, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return NULL;
	return (real_fopen64 ? real_fopen64 : real_fopen)(p, mode);
}

EXPORT int access(const char *path, int amode)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return -1;
	return real_access(p, amode);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return -1;
	return real_mkdir(p, mode);
}

static void fake_blockdev(int idx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFBLK | 0660;
	st->st_nlink = 1;
	st->st_rdev = makedev(FAKE_BLOCK_MAJOR, (unsigned)(idx + 1));
	st->st_ino = (ino_t)(idx + 1);
	st->st_blksize = 4096;
}

EXPORT int stat(const char *path, struct stat *st)
{
	resolve();
	int idx = mount_index_by_fsname(path);
	if (idx >= 0 && strncmp(path, "/dev/", 5) == 0) {
		fake_blockdev(idx, st);
		return 0;
	}
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return -1;
	return real_stat(p, st);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
	resolve();
	int idx = mount_index_by_fsname(path);
	if (idx >= 0 && strncmp(path, "/dev/", 5) == 0) {
		struct stat s;
		fake_blockdev(idx, &s);
		memset(st, 0, sizeof(*st));
		st->st_mode = s.st_mode;
		st->st_nlink = s.st_nlink;
		st->st_rdev = s.st_rdev;
		st->st_ino = s.st_ino;
		st->st_blksize = s.st_blksize;
		return 0;
	}
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return -1;
	return real_stat64(p, st);
}

EXPORT DIR *opendir(const char *path)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(path, buf, sizeof(buf));
	if (!p)
		return NULL;
	return real_opendir(p);
}

EXPORT FILE *setmntent(const char *file, const char *mode)
{
	resolve();
	char buf[PATH_MAX];
	const char *p = redirect_path(file, buf, sizeof(buf));
	if (!p)
		return NULL;
	return real_setmntent(p, mode);
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks: identity */

static const char *hostname(void)
{
	return env_or("HVSIM_HOSTNAME", "hvsim-guest");
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

EXPORT int uname(struct utsname *u)
{
	if (!u) {
		errno = EFAULT;
		return -1;
	}
	memset(u, 0, sizeof(*u));
	copy_field(u->sysname, sizeof(u->sysname), env_or("HVSIM_UNAME_SYSNAME", "Linux"));
	copy_field(u->nodename, sizeof(u->nodename), hostname());
	copy_field(u->release, sizeof(u->release), env_or("HVSIM_UNAME_RELEASE", "6.1.0-hvsim-amd64"));
	copy_field(u->version, sizeof(u->version), env_or("HVSIM_UNAME_VERSION", "#1 SMP PREEMPT_DYNAMIC hvsim"));
	copy_field(u->machine, sizeof(u->machine), env_or("HVSIM_UNAME_MACHINE", "x86_64"));
#ifdef _GNU_SOURCE
	copy_field(u->domainname, sizeof(u->domainname), "(none)");
#endif
	return 0;
}

EXPORT pid_t getpid(void)
{
	const char *v = getenv("HVSIM_PID");
	long pid = v && *v ? strtol(v, NULL, 10) : 4242;
	return pid > 0 ? (pid_t)pid : 4242;
}

EXPORT int gethostname(char *name, size_t len)
{
	const char *h = hostname();
	size_t n = strlen(h);
	if (n + 1 > len) {
		if (len > 0) {
			memcpy(name, h, len);
		}
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(name, h, n + 1);
	return 0;
}

#define AI_MAGIC 0x6876736d61693031ULL /* "hvsmai01" */
struct fake_ai {
	struct addrinfo ai;
	struct sockaddr_in sa;
	uint64_t magic;
	char canon[NI_MAXHOST];
};

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	(void)service;
	const char *fqdn = env_or("HVSIM_FQDN", hostname());
	if (!node || !res)
		return EAI_NONAME;
	if (strcmp(node, hostname()) != 0 && strcmp(node, fqdn) != 0 && strcmp(node, "localhost") != 0)
		return EAI_NONAME;
	if (hints && hints->ai_family != AF_UNSPEC && hints->ai_family != AF_INET)
		return EAI_ADDRFAMILY;
	struct fake_ai *f = calloc(1, sizeof(*f));
	if (!f)
		return EAI_MEMORY;
	f->magic = AI_MAGIC;
	f->sa.sin_family = AF_INET;
	f->sa.sin_addr.s_addr = htonl(0x7f000101); /* 127.0.1.1, Debian's address for the hostname */
	f->ai.ai_family = AF_INET;
	f->ai.ai_socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
	f->ai.ai_protocol = hints ? hints->ai_protocol : 0;
	f->ai.ai_addrlen = sizeof(f->sa);
	f->ai.ai_addr = (struct sockaddr *)&f->sa;
	if (hints && (hints->ai_flags & AI_CANONNAME)) {
		copy_field(f->canon, sizeof(f->canon), strcmp(node, "localhost") == 0 ? "localhost" : fqdn);
		f->ai.ai_canonname = f->canon;
	}
	*res = &f->ai;
	return 0;
}

EXPORT void freeaddrinfo(struct addrinfo *ai)
{
	resolve();
	if (!ai)
		return;
	struct fake_ai *f = (struct fake_ai *)ai;
	if (f->magic == AI_MAGIC) {
		f->magic = 0;
		free(f);
		return;
	}
	if (real_freeaddrinfo)
		real_freeaddrinfo(ai);
}

#define IFA_MAGIC 0x6876736d69666130ULL /* "hvsmifa0" */
struct fake_ifa {
	struct ifaddrs ifa; /* first: the list links these */
	uint64_t magic;
	char name[IF_NAMESIZE + 1];
	struct sockaddr_storage addr, mask;
};

static int prefix_mask(int family, int prefix, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;
		s->sin_family = AF_INET;
		if (prefix < 0 || prefix > 32)
			return -1;
		s->sin_addr.s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix));
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
		s->sin6_family = AF_INET6;
		if (prefix < 0 || prefix > 128)
			return -1;
		for (int i = 0; i < 16; i++) {
			int bits = prefix - i * 8;
			s->sin6_addr.s6_addr[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
		}
	}
	return 0;
}

EXPORT int getifaddrs(struct ifaddrs **out)
{
	const char *spec = env_or("HVSIM_IFADDRS", "");
	struct ifaddrs *head = NULL, **link = &head;
	char *copy = strdup(spec);
	if (!copy) {
		errno = ENOMEM;
		return -1;
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ";\n", &save); tok; tok = strtok_r(NULL, ";\n", &save)) {
		char name[IF_NAMESIZE + 1], addr[128];
		int prefix = -1;
		if (sscanf(tok, " %16s %127[^/]/%d", name, addr, &prefix) != 3) {
			shim_log("HVSIM_IFADDRS: cannot parse entry \"%s\" (want \"NAME ADDR/PREFIX\")", tok);
			continue;
		}
		struct fake_ifa *f = calloc(1, sizeof(*f));
		if (!f)
			break;
		f->magic = IFA_MAGIC;
		copy_field(f->name, sizeof(f->name), name);
		int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
		int ok;
		if (family == AF_INET) {
			struct sockaddr_in *s = (struct sockaddr_in *)&f->addr;
			s->sin_family = AF_INET;
			ok = inet_pton(AF_INET, addr, &s->sin_addr) == 1;
		} else {
			struct sockaddr_in6 *s = (struct sockaddr_in6 *)&f->addr;
			s->sin6_family = AF_INET6;
			ok = inet_pton(AF_INET6, addr, &s->sin6_addr) == 1;
		}
		if (!ok || prefix_mask(family, prefix, &f->mask) < 0) {
			shim_log("HVSIM_IFADDRS: bad address in \"%s\"", tok);
			free(f);
			continue;
		}
		f->ifa.ifa_name = f->name;
		f->ifa.ifa_flags = IFF_UP | IFF_RUNNING |
				   (strcmp(name, "lo") == 0 ? IFF_LOOPBACK : (IFF_BROADCAST | IFF_MULTICAST));
		f->ifa.ifa_addr = (struct sockaddr *)&f->addr;
		f->ifa.ifa_netmask = (struct sockaddr *)&f->mask;
		*link = &f->ifa;
		link = &f->ifa.ifa_next;
	}
	free(copy);
	*out = head;
	return 0;
}

EXPORT void freeifaddrs(struct ifaddrs *ifa)
{
	resolve();
	if (!ifa)
		return;
	if (((struct fake_ifa *)ifa)->magic != IFA_MAGIC) {
		if (real_freeifaddrs)
			real_freeifaddrs(ifa);
		return;
	}
	while (ifa) {
		struct ifaddrs *next = ifa->ifa_next;
		((struct fake_ifa *)ifa)->magic = 0;
		free(ifa);
		ifa = next;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks: processes */

EXPORT int system(const char *cmd)
{
	shim_log("refused system(\"%s\")", cmd ? cmd : "(null)");
	if (!cmd)
		return 0; /* "no shell available" */
	errno = ENOSYS;
	return -1;
}

EXPORT FILE *popen(const char *cmd, const char *type)
{
	(void)type;
	shim_log("refused popen(\"%s\")", cmd ? cmd : "(null)");
	errno = ENOSYS;
	return NULL;
}

EXPORT int daemon(int nochdir, int noclose)
{
	(void)nochdir;
	(void)noclose;
	shim_log("daemon() ignored: staying in the foreground");
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks: syslog -> stderr */

static char log_ident[64];

EXPORT void openlog(const char *ident, int option, int facility)
{
	(void)option;
	(void)facility;
	copy_field(log_ident, sizeof(log_ident), ident ? ident : "");
}

EXPORT void closelog(void)
{
}

static void emit_syslog(int pri, const char *fmt, va_list ap)
{
	char msg[4096];
	resolve();
	int saved = errno;
	int n = vsnprintf(msg, sizeof(msg), fmt, ap); /* glibc's printf knows %m, like syslog */
	errno = saved;
	if (n < 0)
		return;
	size_t len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	char line[8300];
	const char *ident = log_ident[0] ? log_ident : program_invocation_short_name;
	size_t o = (size_t)snprintf(line, sizeof(line), "syslog:%d:%s: ", pri & LOG_PRIMASK, ident);
	for (size_t i = 0; i < len && o < sizeof(line) - 3; i++) {
		if (msg[i] == '\n') {
			line[o++] = '\\';
			line[o++] = 'n';
		} else {
			line[o++] = msg[i];
		}
	}
	line[o++] = '\n';
	write_stderr(line, o);
	errno = saved;
}

EXPORT void syslog(int pri, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit_syslog(pri, fmt, ap);
	va_end(ap);
}

EXPORT void vsyslog(int pri, const char *fmt, va_list ap)
{
	emit_syslog(pri, fmt, ap);
}

EXPORT void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	(void)flag;
	va_list ap;
	va_start(ap, fmt);
	emit_syslog(pri, fmt, ap);
	va_end(ap);
}

EXPORT void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	emit_syslog(pri, fmt, ap);
}
