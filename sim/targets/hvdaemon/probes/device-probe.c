/*
 * Device probe: exercises the shim's character-device semantics on /dev/vmbus/hv_kvp against a
 * scripted hvsim (specs/targets/hvdaemon-bridge.spec.ts). Prints one line per step:
 *   open1 FD | -ERRNO        first open
 *   open2 -ERRNO             second open while the first is open (hvsim says EBUSY)
 *   write1 RESULT            write("hello") (hvsim says EINVAL)
 *   write2 RESULT            write("abc")   (hvsim queues a 10-byte message, returns 3)
 *   pollout REVENTS          poll(POLLOUT, 0): the device never reports POLLOUT
 *   poll1 N REVENTS          poll(POLLIN, 5000) with a message queued
 *   short RESULT             read with a 4-byte buffer: -EINVAL, the message stays
 *   read RESULT TEXT         read with a 100-byte buffer
 *   waiting                  then poll(POLLIN, -1) until hvsim hangs up
 *   poll2 N REVENTS          after the hang-up
 *   read2 RESULT / write3 RESULT   after the hang-up
 *   done
 * RESULT is the return value or -errno.
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

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *dev = "/dev/vmbus/hv_kvp";
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	printf("open1 %ld\n", res(fd));
	if (fd < 0)
		return 1;
	int fd2 = open(dev, O_RDWR | O_CLOEXEC);
	printf("open2 %ld\n", res(fd2));
	if (fd2 >= 0)
		close(fd2);
	printf("write1 %ld\n", res(write(fd, "hello", 5)));
	printf("write2 %ld\n", res(write(fd, "abc", 3)));
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n = poll(&p, 1, 0);
	printf("pollout %d 0x%x\n", n, (unsigned)p.revents);
	p.events = POLLIN;
	n = poll(&p, 1, 5000);
	printf("poll1 %d 0x%x\n", n, (unsigned)p.revents);
	char buf[100];
	printf("short %ld\n", res(read(fd, buf, 4)));
	long r = res(read(fd, buf, sizeof(buf) - 1));
	buf[r > 0 ? r : 0] = '\0';
	printf("read %ld %s\n", r, buf);
	printf("waiting\n");
	p.revents = 0;
	n = poll(&p, 1, -1);
	printf("poll2 %d 0x%x\n", n, (unsigned)p.revents);
	printf("read2 %ld\n", res(read(fd, buf, sizeof(buf))));
	printf("write3 %ld\n", res(write(fd, "x", 1)));
	close(fd);
	printf("done\n");
	return 0;
}
