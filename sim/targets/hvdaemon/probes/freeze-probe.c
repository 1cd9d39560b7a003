/*
 * Sandbox probe: tries FIFREEZE on a directory's filesystem and prints what happened, so a spec
 * can show that the sandbox stops it. Run it ONLY through the sandbox launcher; as uid 0 it
 * refuses to try (a real FIFREEZE of / would hang the machine).
 *
 *   freeze-probe DIR   prints:
 *     uid=U euid=U
 *     status NoNewPrivs=N Seccomp=N CapEff=HEX
 *     libc FIFREEZE DIR -> RET errno=E     (through libc's ioctl: the shim, when preloaded)
 *     raw FIFREEZE DIR -> RET errno=E      (syscall(SYS_ioctl): bypasses any LD_PRELOAD)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void status_line(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256], nnp[32] = "?", sec[32] = "?", cap[32] = "?";
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "NoNewPrivs: %31s", nnp);
		sscanf(line, "Seccomp: %31s", sec);
		sscanf(line, "CapEff: %31s", cap);
	}
	if (f)
		fclose(f);
	printf("status NoNewPrivs=%s Seccomp=%s CapEff=%s\n", nnp, sec, cap);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *dir = argc > 1 ? argv[1] : "/";
	printf("uid=%u euid=%u\n", (unsigned)getuid(), (unsigned)geteuid());
	status_line();
	if (getuid() == 0 || geteuid() == 0) {
		printf("refusing: running as root outside the sandbox\n");
		return 2;
	}
	int fd = open(dir, O_RDONLY);
	if (fd < 0) {
		printf("open %s failed errno=%d\n", dir, errno);
		return 1;
	}
	errno = 0;
	int r = ioctl(fd, FIFREEZE, 0);
	printf("libc FIFREEZE %s -> %d errno=%d\n", dir, r, r < 0 ? errno : 0);
	errno = 0;
	long s = syscall(SYS_ioctl, fd, FIFREEZE, 0);
	printf("raw FIFREEZE %s -> %ld errno=%d\n", dir, s, s < 0 ? errno : 0);
	close(fd);
	return 0;
}
