/*
 * hvsim sandbox launcher: runs a Hyper-V daemon (or a probe program) so that it can never freeze
 * or thaw a real filesystem, then execs it (same pid: signals from hvsim reach the daemon).
 *
 *   usage: sandbox [options] -- PROGRAM [ARG...]
 *     --uid N, --gid N   identity to switch to when started as root (default 65534 / 65534,
 *                        nobody / nogroup); when not root the caller's identity is kept
 *     --preload PATH     LD_PRELOAD for PROGRAM only (the launcher itself never loads the shim)
 *     --no-netns         keep the network namespace (default: a new, empty one)
 *     --freeze-errno N   errno the seccomp filter returns for FIFREEZE/FITHAW (default EPERM);
 *                        lets a test tell the filter's answer apart from the kernel's
 *     --no-seccomp       no seccomp filter: only to show the credential layer on its own;
 *                        refused unless the user-namespace and non-root layers are in place
 *     --check            set everything up, print one line describing it, exit 0 (no exec)
 *   Exit status 125 = setup failed (the reason is on stderr, prefixed "hvsim-sandbox:").
 *
 * Layers between the daemon and a real FIFREEZE/FITHAW (each one alone suffices):
 *   1. The shim (shim.c, LD_PRELOAD): the daemon opens mount directories of a fake mount table;
 *      ioctl(FIFREEZE/FITHAW) on those fds is answered by hvsim and never reaches the kernel, and
 *      on any other fd is refused with EPERM. This is where hvsim decides freeze results.
 *   2. seccomp (below, hand-written BPF, after PR_SET_NO_NEW_PRIVS): ioctl with the command
 *      FIFREEZE (0xC0045877) or FITHAW (0xC0045878) in the low 32 bits (the kernel reads `cmd` as
 *      unsigned int) fails with EPERM in the kernel before any filesystem code runs; this also
 *      covers raw syscall(SYS_ioctl) that bypasses the shim. Syscalls of another ABI (i386 via
 *      int 0x80, x32) kill the process, so no other syscall number can carry an ioctl.
 *   3. Credentials: the daemon runs as uid/gid 65534 with no supplementary groups, in a new user
 *      namespace, with no capabilities (cleared, and execve as non-root keeps none).
 *      ioctl_fsfreeze() needs CAP_SYS_ADMIN in the filesystem's user namespace (the initial one
 *      for every real filesystem): EPERM.
 *   4. PR_SET_NO_NEW_PRIVS: execve can never gain privileges back (setuid/file capabilities),
 *      and the parent-death signal (SIGKILL) ends the daemon if hvsim's process dies.
 * The shim also refuses system()/popen(), so the daemon starts no other program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FIFREEZE_CMD 0xC0045877u
#define FITHAW_CMD 0xC0045878u

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "hvsim sandbox: add the seccomp audit arch of this CPU"
#endif

static void die(const char *what)
{
	fprintf(stderr, "hvsim-sandbox: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void fail(const char *msg)
{
	fprintf(stderr, "hvsim-sandbox: %s\n", msg);
	exit(125);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len)
		die(path);
	close(fd);
}

static void install_seccomp(int freeze_errno)
{
	struct sock_filter filter[] = {
		/* [0] only the native ABI */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		/* [3] syscall number */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef X32_BIT
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#else
		BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0),
		BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0),
#endif
		/* [6] ioctl? */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* [8] low 32 bits of args[1] (little-endian: the first word) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FIFREEZE_CMD, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FITHAW_CMD, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* [12] */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)freeze_errno & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = { .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])), .filter = filter };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		die("seccomp filter");
}

static void drop_capabilities(void)
{
	/* The bounding set first (needs CAP_SETPCAP, which we hold in the new namespace until capset). */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			die("PR_CAPBSET_DROP");
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset");
}

static long parse_num(const char *s, const char *opt)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < 0) {
		fprintf(stderr, "hvsim-sandbox: %s wants a non-negative number, got \"%s\"\n", opt, s);
		exit(125);
	}
	return v;
}

int main(int argc, char **argv)
{
	uid_t uid = 65534;
	gid_t gid = 65534;
	const char *preload = NULL;
	int netns = 1, seccomp = 1, check = 0;
	int freeze_errno = EPERM;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--uid") == 0 && i + 1 < argc) {
			uid = (uid_t)parse_num(argv[++i], a);
		} else if (strcmp(a, "--gid") == 0 && i + 1 < argc) {
			gid = (gid_t)parse_num(argv[++i], a);
		} else if (strcmp(a, "--preload") == 0 && i + 1 < argc) {
			preload = argv[++i];
		} else if (strcmp(a, "--no-netns") == 0) {
			netns = 0;
		} else if (strcmp(a, "--no-seccomp") == 0) {
			seccomp = 0;
		} else if (strcmp(a, "--freeze-errno") == 0 && i + 1 < argc) {
			freeze_errno = (int)parse_num(argv[++i], a);
			if (freeze_errno == 0 || freeze_errno > 4095)
				fail("--freeze-errno must be 1..4095");
		} else if (strcmp(a, "--check") == 0) {
			check = 1;
		} else {
			fprintf(stderr, "hvsim-sandbox: unknown option %s\n", a);
			return 125;
		}
	}
	if (!check && i >= argc)
		fail("usage: sandbox [options] -- PROGRAM [ARG...]");
	if (uid == 0 || gid == 0)
		fail("refusing to run as uid or gid 0");
	pid_t parent = getppid();

	/* Layer 3: credentials. As root, become uid/gid (default nobody/nogroup) for good. */
	if (geteuid() == 0) {
		if (setgroups(0, NULL) < 0)
			die("setgroups");
		if (setresgid(gid, gid, gid) < 0)
			die("setresgid");
		if (setresuid(uid, uid, uid) < 0)
			die("setresuid");
	}
	uid = getuid();
	gid = getgid();
	if (uid == 0 || geteuid() == 0)
		fail("still root after dropping privileges");
	/* Changing credentials made us non-dumpable; /proc/self/uid_map must stay ours to write. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		die("PR_SET_DUMPABLE");
	if (unshare(CLONE_NEWUSER | (netns ? CLONE_NEWNET : 0)) < 0)
		die("unshare(CLONE_NEWUSER) (are unprivileged user namespaces disabled?)");
	char map[64];
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	write_file("/proc/self/gid_map", map);
	drop_capabilities();

	/* Layer 4 and layer 2. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS");
	if (seccomp)
		install_seccomp(freeze_errno);
	else if (geteuid() == 0)
		fail("--no-seccomp needs the non-root layer");

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die("PR_SET_PDEATHSIG");
	if (getppid() != parent)
		fail("parent exited during setup");

	if (check) {
		printf("hvsim-sandbox: ok uid=%u gid=%u userns=1 netns=%d no_new_privs=1 seccomp=%d\n",
		       (unsigned)getuid(), (unsigned)getgid(), netns, seccomp);
		return 0;
	}
	if (preload && setenv("LD_PRELOAD", preload, 1) < 0)
		die("setenv LD_PRELOAD");
	execvp(argv[i], argv + i);
	fprintf(stderr, "hvsim-sandbox: exec %s: %s\n", argv[i], strerror(errno));
	return 127;
}
