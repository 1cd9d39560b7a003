/*
 * Reopen probe: a "daemon" that closes /dev/vmbus/hv_kvp right after a read and opens it again at
 * once, as hv_kvp_daemon / hv_vss_daemon do on a failed read (tools/hv/hv_vss_daemon.c:308-311
 * goto reopen_vss_fd, :248-249 close, :259 open). Used by specs/targets/hvdaemon-bridge.spec.ts
 * with the relay held (HOLD), so that the close, the new connection and its OPEN all wait in the
 * relay's sockets together.
 *   reopen-probe fail   read with a 4-byte buffer: EINVAL, the message stays queued; then close
 *   reopen-probe ok     read with a 100-byte buffer: the message; a poll(0); then close
 * Steps: open, write("go") (hvsim queues a 10-byte message and holds the relay), the read(s),
 * close, open, write("again"), close. Prints one line per step (RESULT = return value or -errno).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long res(long r)
{
	return r < 0 ? -errno : r;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int fail = argc > 1 && strcmp(argv[1], "fail") == 0;
	const char *dev = "/dev/vmbus/hv_kvp";
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	printf("open1 %ld\n", res(fd));
	if (fd < 0)
		return 1;
	printf("write1 %ld\n", res(write(fd, "go", 2)));
	char buf[100];
	if (fail) {
		printf("short %ld\n", res(read(fd, buf, 4)));
	} else {
		printf("read %ld\n", res(read(fd, buf, sizeof(buf))));
		struct pollfd p = { .fd = fd, .events = POLLIN };
		printf("poll %d\n", poll(&p, 1, 0));
	}
	close(fd);
	int fd2 = open(dev, O_RDWR | O_CLOEXEC);
	printf("open2 %ld\n", res(fd2));
	if (fd2 < 0)
		return 1;
	printf("write2 %ld\n", res(write(fd2, "again", 5)));
	close(fd2);
	printf("done\n");
	return 0;
}
